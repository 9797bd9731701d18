"""The warehouse: tables, migrations and the one gateway every statement goes through."""

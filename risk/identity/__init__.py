"""Who a record is about: resident ID numbers (`numbers`: validation, legacy conversion, masking)."""

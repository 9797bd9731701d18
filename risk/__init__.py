"""Social-security fund risk monitoring."""
__version__ = "0.1.0"

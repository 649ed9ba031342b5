"""m365archive: prepare a Microsoft 365 tenant for archiving third-party data."""

__version__ = "0.1.0"

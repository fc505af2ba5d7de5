"""The demo estate: a legacy customer-support portal and new services for two of its modules."""

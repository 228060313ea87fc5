"""Protocol objects and operations of spec chapters 4-6."""

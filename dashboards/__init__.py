"""Panel apps served by `./dev up`: login, conversation, profile, settings, admin, analytics."""

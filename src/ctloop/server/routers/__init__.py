"""One router per resource; each parses, calls the local client and formats."""

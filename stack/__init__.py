"""The local stack: settings, the broker and database processes, and the `tapsense` command."""

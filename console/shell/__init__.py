"""The app shell: the command line, the settings, and the Textual app that wires the store's
read models, the feed's ingest service and the alert engine to the screens."""

"""The call feed: the protocol, the websocket client, the ingest state machine, the writer's
ingest service, and the simulator with its traffic model."""

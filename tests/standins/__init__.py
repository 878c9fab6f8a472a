"""Stand-ins for servers the project talks to. Each one is a small, honestly named imitation of a
documented wire format, used where the real server cannot run here; it is not that server."""

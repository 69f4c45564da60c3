"""The edge agent that runs on venue hardware, and the wire contract (`edge.wire`) it speaks."""

"""Domain-free helpers: clock, ids, cache, sse, retry, batch writer.

Nothing here imports the rest of chatplane."""

"""Observability: Prometheus metrics (`metrics`) and JSON logs carrying the request id
(`logs`). Domain-free apart from names; the api layer, the composition root and the
domains call it, and it imports no other chatplane room."""

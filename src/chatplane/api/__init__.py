"""The gRPC layer: servicers (protobuf <-> domain), the interceptor, the server lifecycle."""

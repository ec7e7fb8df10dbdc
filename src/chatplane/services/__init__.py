"""Domain services: business rules over repositories. They know nothing of gRPC."""

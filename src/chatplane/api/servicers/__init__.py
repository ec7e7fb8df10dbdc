"""Servicers: convert protobuf <-> domain and call the domain services; nothing else."""

"""Channel adapters: provider payloads in, normalised messages and signals out."""

"""Local servers that speak the providers' protocols, for tests and benchmarks."""

"""The experiments layer: toy worlds, studies, benchmarks and reproduction stages built on the `fmea` core (never imported by it)."""

"""Simulation: registered degradations, the deterministic rendering of an utterance, the demo suite."""

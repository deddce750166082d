"""Trouter tests: frames, the client flow and the emulator peer."""

"""Headless rendering (pyrender on EGL) and mesh/parameter export."""

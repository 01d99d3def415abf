"""Renderer model code: hash grids, tri-plane head field, pseudo-3D torso, occupancy
grid and volume rendering (see README.md in this package)."""

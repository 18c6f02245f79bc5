"""Firebreak services: one package each; they share only the firebreak package and proto/."""

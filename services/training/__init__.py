"""Offline training: where datasets, the TTS, the audio encoder and the renderer meet."""

"""Offline training: where datasets, the TTS, the audio encoder and the renderer meet. A dataset
becomes `TrainingData`, a preset (`presets.preset`) builds the modules and the trainer,
and `subject.train_subject` runs it and packs the subject bundle; `evaluation` scores a
trained subject against the synthetic oracle; the TTS-made training data (`speech`,
`content_model`, `denoise_cache`, `data_cli`) lives here too."""

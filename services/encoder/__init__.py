"""Audio encoder: one 64-d audio code per video frame (DESIGN.md §1).

API for the renderer's trainer (dynamic path, trained jointly with the NeRF)
-------------------------------------------------------------------------------
    from services.encoder.features import AudioFeatures, extract_features, frame_count
    from services.encoder.model import AudioEncoder, EncoderConfig, build_encoder

    feats = extract_features(clip16k, fps=25.0)      # AudioClip at 16 kHz, else RateMismatch
    feats.n_frames                                   # round(fps · duration), ≥ 1
    feats.mel_windows                                # [N, 1, 80, 16] float32 tensor
    enc = build_encoder(EncoderConfig(variant="dynamic", conv_width=16, conv_norm="group"))
    codes = enc(feats)                               # [N, 64] for the whole clip
    codes = enc.encode_frames(feats, idx)            # [len(idx), 64]: only idx's ±context frames
                                                     #   are computed (exact in eval mode)
    enc.config.to_dict() / build_encoder(dict)       # JSON for the subject manifest;
    enc.state_dict()                                 # tensors for model.safetensors

- Frame i's mel window starts at int(80·i/fps); its content window is centred on
  round(50·i/fps) (2i at 25 fps). Features record sample_rate / mel_fps / content_fps and
  fps; an encoder given other rates raises RateMismatch.
- `conv_width=32` is Wav2Lip's encoder (2.8 M params); 16 (0.77 M) or 8 (0.23 M) for CPU
  presets. `conv_norm="batch"` is Wav2Lip's; "group" behaves the same in train and eval
  and with batches of a handful of frames (recommended for NeRF training).
- `enc.context_frames` = neighbours on each side a code depends on (4 for "dynamic":
  temporal attention over ±4 frames).

Content path and fusion
-----------------------
    from services.encoder.content import ContentModel
    cm = ContentModel.load(local_dir)                 # any transformers CTC / wav2vec2 / HuBERT dir
    frames = cm.frames(clip16k, lang="zh")            # ContentFrames [T, C] at 50 Hz (pinyin-reduced
                                                      #   automatically for character vocabularies)
    feats = extract_features(clip16k, 25.0, content=frames)
    enc = build_encoder(EncoderConfig(variant="csfm", content_dim=frames.values.shape[1]))

Variants: "dynamic", "content", "concat", "cross" (plain cross-attention), "csfm".
`services.encoder.service.EncoderService` wraps it all for the pipeline and the CLI.
"""

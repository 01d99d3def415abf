"""One photo → a talking-head dataset (`subject from-photo`): the photo's face found and
cropped (`face`), made into an articulated, textured 3D head proxy (`proxy`: a grid
mesh over the person with a depth `relief`, the mouth and lids of `articulate`, the
mouth `interior`, drawn by the numpy rasteriser of `raster`) and rendered saying TTS
sentences into the ER-NeRF layout, as the synthetic oracle is (`dataset`)."""

"""Reading and writing files: safe decoding of images and masks (``images``), and checkpoints in every format the
library opens and atomic writes (``checkpoints``). Below the models' users: it imports only ``lewel.config``; the
files that need more (exports of a loaded model, ``lewel.export``; an extraction's shards, ``lewel.maps.shards``;
the gallery, ``lewel.data.gallery``) live in the layer they need."""

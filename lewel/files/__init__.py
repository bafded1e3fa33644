"""Reading and writing files: safe decoding of images and masks (``images``), checkpoints in every format the
library opens and atomic writes (``checkpoints``), exports of the weights (``export``), the shards of an
extraction (``shards``) and the images offered without an upload (``gallery``)."""

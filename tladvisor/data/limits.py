"""The loaders' limits: upload size, ZIP-bomb, file-count, class-count, text-length and pixel caps.

The loaders read these as ``limits.MAX_...`` each time they are used (never bound as defaults), so
tests and operators can change them: set ``tladvisor.data.MAX_UPLOAD_MB`` (the package forwards it
here), or the environment variables that the two size caps honour (see ``sources``).
"""

from __future__ import annotations

MAX_UPLOAD_MB = 200  # Streamlit's own default upload cap; env TLADVISOR_MAX_UPLOAD_MB overrides
MAX_UNCOMPRESSED_MB = 1024  # ZIP-bomb guard on declared sizes; env TLADVISOR_MAX_UNCOMPRESSED_MB
MAX_IMAGES = 50_000  # member-count guard, checked before any member is read
MAX_CLASSES = 1000  # beyond ImageNet's count a "label" is almost surely an ID or free text
MAX_TEXT_CHARS = 20_000  # ~5k tokens; the text models read 256-512 tokens, so more is only memory
MAX_IMAGE_SIDE = 512  # longest side kept; the image models read 224 px, this bounds memory
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: a 40 MP photo is fine, a 1 GP PNG is not

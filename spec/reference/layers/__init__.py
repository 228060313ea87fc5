"""Registry of the layers the verifier implements.

Each layer module defines `LAYER` (the value of a file's "layer" field),
`KINDS` (vector kind -> `common.Kind`) and `EXPECTED_COUNTS` (vector kind ->
number of vectors the published file holds). To add a layer, add a module
and list it here.
"""

from layers import handshake, kem, session_v2

MODULES = (kem, handshake, session_v2)

LAYERS = {m.LAYER: m for m in MODULES}

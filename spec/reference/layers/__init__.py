"""Registry of the layers the verifier implements.

Each layer module defines `LAYER` (the value of a file's "layer" field),
`KINDS` (vector kind -> `common.Kind`) and `EXPECTED_COUNTS` (vector kind ->
number of vectors the published file holds). To add a layer, add a module
and list it here.
"""

from layers import (devices, envelope, handshake, kem, link, ratchet, records, session_v2,
                    sessions, stored_prekeys, stored_session)

MODULES = (kem, handshake, session_v2, ratchet, stored_session, stored_prekeys, devices, link,
           envelope, sessions, records)

LAYERS = {m.LAYER: m for m in MODULES}

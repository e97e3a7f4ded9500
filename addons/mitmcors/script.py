"""The addon script inside the installed package, for `mitmdump -s "$(python -m mitmcors --script)"`.

From a checkout, `addons/cors.py` is the same thing.
"""

from mitmcors.addon import CorsAddon

addons = [CorsAddon()]

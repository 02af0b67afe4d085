"""Secret parameters: a token from a Kubernetes Secret, real for the job and masked everywhere else.

``SignRequests`` signs one request per city of the ``cities`` parameter with the secret
``api_token`` (HMAC-SHA256, so it sends nothing over the network). Its log lines print the token,
and the log shows the mask instead. It keeps the session key it derives as a secret parameter of
its own, which the task database also stores as the mask.
"""

from __future__ import annotations

import hashlib
import hmac

from etl_runtime import ETLTask


class SignRequests(ETLTask):
    def load(self) -> None:
        token = self.get_parameter("api_token")
        for city in self.get_parameter("cities", ["Seattle"]):
            signature = hmac.new(token.encode(), city.encode(), hashlib.sha256).hexdigest()
            # The log shows ******** in place of the token.
            self.log.info("signed the request for %s with token %s: %s", city, token, signature[:12])
            self.statistics.add("requests_signed")
        self.set_parameter("session_key", hashlib.sha256(token.encode()).hexdigest(), secret=True)
        # The dict contains the real values, but printed it shows the secret ones masked.
        self.log.info("parameters now: %s", self.parameters())

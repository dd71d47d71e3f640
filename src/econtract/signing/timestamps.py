"""RFC 3161 time-stamping: one client type for an external TSA and for the platform's own.

A :class:`TsaClient` is either a URL (an external TSA, reached with pyHanko's HTTP client) or an
in-process responder — a function from ``TimeStampReq`` DER to ``TimeStampResp`` DER — which is
how the platform's built-in TSA is plugged in without an HTTP round trip. Both are served to
pyHanko by one ``TimeStamper`` subclass that overrides the request step only, so pyHanko still
builds the request (with a nonce) and checks the response status and nonce.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from asn1crypto import core, tsp
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from econtract.errors import ValidationFailed

#: ``TimeStampReq`` DER in, ``TimeStampResp`` DER out.
Responder = Callable[[bytes], bytes]


@dataclass(frozen=True, eq=False)
class TsaClient:
    """Where signature and document timestamps come from: exactly one of ``url``, ``responder``.

    Compared by identity, because the pyHanko timestamper built from it is cached per instance.
    """

    url: str | None = None
    """An external RFC 3161 service (``http`` or ``https``; the token is signed either way)."""
    responder: Responder | None = None
    """An in-process TSA, e.g. the platform's own, called synchronously with the request DER."""
    timeout: float = 10.0
    """Seconds to wait for an external TSA."""

    def __post_init__(self) -> None:
        if (self.url is None) == (self.responder is None):
            raise ValidationFailed("A TSA client needs exactly one of url and responder")
        if self.url is not None and (urlsplit(self.url).scheme not in ("http", "https")
                                     or not urlsplit(self.url).netloc):
            raise ValidationFailed(f"Invalid TSA URL: {self.url!r}")


class ClientTimeStamper(TimeStamper):
    """pyHanko ``TimeStamper`` that sends each request through a :class:`TsaClient`."""

    def __init__(self, client: TsaClient) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]  # pyHanko: untyped
        self._responder = client.responder
        self.token_size: int | None = None
        """DER size of the last token received (sizes the next signature's reserve)."""
        self._http: HTTPTimeStamper | None = None
        if client.url is not None:
            self._http = HTTPTimeStamper(client.url, timeout=client.timeout)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Obtain the response to ``req`` from the responder or the remote TSA.

        :param req: the request pyHanko built (message imprint, nonce, certReq).
        :return: the parsed response; pyHanko checks its status and nonce.
        :raises TimestampRequestError: the TSA could not be reached or sent garbage.
        """
        try:
            if self._http is not None:
                response = await self._http.async_request_tsa_response(req)
            else:
                assert self._responder is not None
                response = tsp.TimeStampResp.load(self._responder(req.dump()))
            response["status"]["status"].native  # noqa: B018  # parse now, fail here
            token = response["time_stamp_token"]
            self.token_size = None if isinstance(token, core.Void) else len(token.dump())
        except (ValueError, TypeError, KeyError) as exc:
            raise TimestampRequestError("The TSA returned a malformed response") from exc
        return response


_stampers: weakref.WeakKeyDictionary[TsaClient, ClientTimeStamper] = weakref.WeakKeyDictionary()


def timestamper_for(client: TsaClient) -> ClientTimeStamper:
    """The pyHanko timestamper of ``client``, built on first use and then reused.

    :param client: the TSA client.
    :return: a ``TimeStamper`` to pass to pyHanko's signers.
    """
    stamper = _stampers.get(client)
    if stamper is None:
        stamper = _stampers[client] = ClientTimeStamper(client)
    return stamper

"""The SOAP login (docs/protocol.md §2.1): a security token from login.live.com, then the edge exchange.

Step 1 posts a WS-Trust ``RequestSecurityToken`` envelope (UTF-8, no ``Content-Type``) with the
user name and password, XML-escaped (``&``, then ``<``, then ``>``), to ``RST.srf``. Step 2 posts
the ``BinarySecurityToken`` found in the answer to the edge service, which returns the Skype token.

Decisions where the reference client crashes or loses information (§12.20):

* XML is parsed with expat, refusing any document that declares a DOCTYPE or an entity before
  the declaration is processed, so entity-expansion ("billion laughs") and external-entity
  payloads cost nothing. Any answer that is not well-formed XML is a
  :class:`~skyproto.RemoteProtocolError`.
* A fault is read from SOAP 1.1 ``faultcode``/``faultstring`` or, failing those, from SOAP 1.2
  ``Code/Value`` (with any ``Subcode/Value`` chain joined by ``/``) and ``Reason/Text``, and
  raised as :class:`~skyproto.SkypeAuthException` ``"<code> - <reason>"``. A fault sent with an
  error status (HTTP 500 is the norm) is still read as a fault; 429 stays a rate-limit error.
* An edge answer that is not a JSON object, or whose ``expiresIn`` is not a whole number of
  seconds, is a :class:`~skyproto.RemoteProtocolError`. An answer without ``expiresIn`` gets the
  default lifetime (see ``skyproto/auth/_pages.py``).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any, NoReturn
from xml.parsers import expat

from .._flow import Flow, now, request
from .._http import HttpResponse
from ..calls import DEFAULT_ACCEPTED, build_request, check_status
from ..errors import RemoteProtocolError, SkypeApiException, SkypeAuthException
from ..hosts import Hosts
from ..tokens import Credentials, SkypeToken
from ._pages import expiry_from, require_text, shorten

__all__ = ["soap_login"]

#: The ``partner`` field of the edge exchange.
EDGE_PARTNER = "999"

_NAMESPACES = (
    ("", "http://schemas.xmlsoap.org/soap/envelope/"),
    ("wsse", "http://schemas.xmlsoap.org/ws/2003/06/secext"),
    ("wsp", "http://schemas.xmlsoap.org/ws/2002/12/policy"),
    ("wsa", "http://schemas.xmlsoap.org/ws/2004/03/addressing"),
    ("wst", "http://schemas.xmlsoap.org/ws/2004/04/trust"),
    ("ps", "http://schemas.microsoft.com/Passport/SoapServices/PPCRL"),
)
_ISSUE = "http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue"


def xml_escape(text: str) -> str:
    """Escape element text the way the envelope needs: ``&``, then ``<``, then ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def security_token_envelope(credentials: Credentials) -> str:
    """The ``RST.srf`` request body for ``credentials``."""
    declarations = "\n          ".join(
        f"xmlns{':' + prefix if prefix else ''}='{uri}'" for prefix, uri in _NAMESPACES
    )
    return (
        f"<Envelope {declarations}>\n"
        "  <Header>\n"
        "    <wsse:Security>\n"
        "      <wsse:UsernameToken Id='user'>\n"
        f"        <wsse:Username>{xml_escape(credentials.user)}</wsse:Username>\n"
        f"        <wsse:Password>{xml_escape(credentials.password)}</wsse:Password>\n"
        "      </wsse:UsernameToken>\n"
        "    </wsse:Security>\n"
        "  </Header>\n"
        "  <Body>\n"
        "    <ps:RequestMultipleSecurityTokens Id='RSTS'>\n"
        "      <wst:RequestSecurityToken Id='RST0'>\n"
        f"        <wst:RequestType>{_ISSUE}</wst:RequestType>\n"
        "        <wsp:AppliesTo>\n"
        "          <wsa:EndpointReference>\n"
        "            <wsa:Address>wl.skype.com</wsa:Address>\n"
        "          </wsa:EndpointReference>\n"
        "        </wsp:AppliesTo>\n"
        "        <wsse:PolicyReference URI='MBI_SSL'></wsse:PolicyReference>\n"
        "      </wst:RequestSecurityToken>\n"
        "    </ps:RequestMultipleSecurityTokens>\n"
        "  </Body>\n"
        "</Envelope>"
    )


class _Refused(Exception):
    pass


def _refuse(*_args: Any) -> NoReturn:
    raise _Refused


def parse_xml(body: bytes, response: HttpResponse | None = None) -> ET.Element:
    """Parse ``body`` as XML, refusing DOCTYPE and entity declarations.

    Element tags are ``{namespace}local`` (or ``local``), as in ElementTree.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = lambda name, attributes: builder.start(
        "{" + name if "}" in name else name, attributes
    )
    parser.EndElementHandler = lambda name: builder.end("{" + name if "}" in name else name)
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body, True)
    except _Refused:
        raise RemoteProtocolError(
            "refusing an XML document with a DOCTYPE or entity declaration", response
        ) from None
    except expat.ExpatError:
        raise RemoteProtocolError("login response is not well-formed XML", response) from None
    return builder.close()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: ET.Element | None, name: str) -> str | None:
    child = None if element is None else _child(element, name)
    text = None if child is None or child.text is None else child.text.strip()
    return text or None


def _fault_message(fault: ET.Element) -> str | None:
    code, reason = _child_text(fault, "faultcode"), _child_text(fault, "faultstring")
    if code is None and reason is None:
        codes: list[str] = []
        level = _child(fault, "Code")
        while level is not None:  # bounded by the (finite) depth of the parsed tree
            value = _child_text(level, "Value")
            if value is not None:
                codes.append(value)
            level = _child(level, "Subcode")
        code, reason = "/".join(codes) or None, _child_text(_child(fault, "Reason"), "Text")
    if code is None and reason is None:
        return None
    return shorten(f"{code} - {reason}")


def _first_fault(root: ET.Element) -> ET.Element | None:
    for element in root.iter():
        if _local(element.tag) == "Fault":
            return element
    return None


def _raise_fault(root: ET.Element, response: HttpResponse) -> None:
    fault = _first_fault(root)
    if fault is not None:
        message = _fault_message(fault)
        if message is None:
            raise RemoteProtocolError("Unknown fault whilst requesting security token", response)
        raise SkypeAuthException(message, response)


def parse_security_token(response: HttpResponse) -> str:
    """The security token in an ``RST.srf`` answer; a fault raises ``SkypeAuthException``."""
    root = parse_xml(response.body, response)
    _raise_fault(root, response)
    token: str | None = None
    for element in root.iter():
        if _local(element.tag) == "BinarySecurityToken":
            token = (element.text or "").strip()
    if not token:
        raise RemoteProtocolError("Couldn't retrieve security token from login response", response)
    return token


def parse_edge_response(response: HttpResponse, current: dt.datetime) -> SkypeToken:
    """The Skype token and expiry in an edge answer, read at time ``current``."""
    try:
        data = response.json()
    except RemoteProtocolError:
        raise RemoteProtocolError("Couldn't parse edge response body", response) from None
    if not isinstance(data, dict):
        raise RemoteProtocolError("edge response body is not a JSON object", response)
    if "skypetoken" in data:
        token = require_text(data["skypetoken"], "the edge response's skypetoken", response)
        return SkypeToken(token, expiry_from(data, "expiresIn", current, response))
    if "status" in data:
        status = data["status"]
        if not isinstance(status, dict):
            raise RemoteProtocolError("edge response has a malformed status member", response)
        raise SkypeApiException(shorten(f"{status.get('code')} - {status.get('text')}"), response)
    raise RemoteProtocolError("Couldn't retrieve token from edge response", response)


def soap_login(credentials: Credentials, *, hosts: Hosts) -> Flow[SkypeToken]:
    """Flow: log in with the SOAP security-token service and the edge exchange."""
    rst_url = hosts.require_trusted(hosts.msacc + "/RST.srf", "the security-token request")
    req = build_request(
        "POST", rst_url, kind="token exchange", content=security_token_envelope(credentials)
    )
    response = yield from request(req)
    current = yield from now()
    if response.status not in DEFAULT_ACCEPTED and response.status != 429:
        try:
            fault = _first_fault(parse_xml(response.body, response))
        except RemoteProtocolError:
            fault = None  # not XML: the status check below reports the status
        message = None if fault is None else _fault_message(fault)
        if message is not None:
            raise SkypeAuthException(message, response)
    check_status(response, DEFAULT_ACCEPTED, method="POST", url=rst_url, now=current)
    security_token = parse_security_token(response)

    edge_url = hosts.require_trusted(hosts.edge, "the edge token exchange")
    form: list[tuple[str, str | None]] = [
        ("partner", EDGE_PARTNER),
        ("access_token", security_token),
        ("scopes", "client"),
    ]
    response = yield from request(build_request("POST", edge_url, kind="token exchange", form=form))
    current = yield from now()
    check_status(response, DEFAULT_ACCEPTED, method="POST", url=edge_url, now=current)
    return parse_edge_response(response, current)

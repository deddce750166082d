"""What ``skyproto events`` on a Teams session relies on beside the client: the endpoint id in
the saved state, the handshake answer's redaction, the catch-up's filter and the emulator's
Trouter knobs."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from skyproto import Hosts, SkypeTokenException
from skyproto._http import HttpRequest, HttpResponse
from skyproto._redact import describe
from skyproto._snapshot import SessionState, TeamsState, dump_snapshot, load_snapshot
from skyproto.cli._events import _millis
from skyproto.emulator.scenario import TROUTER_STEPS, parse_scenario
from skyproto.errors import LocalProtocolError
from skyproto.tokens import SkypeToken

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
HOSTS = Hosts.teams()


def teams_state(endpoint: str | None) -> SessionState:
    token = SkypeToken("skype-token-value", NOW + dt.timedelta(hours=20))
    teams = TeamsState("refresh-token-value", trouter_endpoint=endpoint)
    return SessionState(user_id="live:.cid.1", skype_token=token, teams=teams)


def test_the_endpoint_id_round_trips_and_is_left_out_while_unset() -> None:
    kept = teams_state("5f1849ad-0d9d-47a3-a061-042c63fbe76d")
    assert load_snapshot(dump_snapshot(kept), now=NOW, hosts=HOSTS) == kept
    unset = json.loads(dump_snapshot(teams_state(None)))
    assert "trouter_endpoint" not in unset["teams"]  # as snapshots were written before


def test_a_snapshot_written_before_the_endpoint_id_was_kept_loads() -> None:
    document = json.loads(dump_snapshot(teams_state("abc")))
    del document["teams"]["trouter_endpoint"]
    loaded = load_snapshot(json.dumps(document), now=NOW, hosts=HOSTS)
    assert loaded.teams is not None
    assert loaded.teams.trouter_endpoint is None


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "id\n", "é"])
def test_an_endpoint_id_that_cannot_go_into_a_query_is_refused(bad: str) -> None:
    with pytest.raises(SkypeTokenException, match=r"teams\.trouter_endpoint"):
        load_snapshot(dump_snapshot(teams_state(bad)), now=NOW, hosts=HOSTS)


@pytest.mark.parametrize(
    "body",
    ["io000003:180:180:websocket,xhr-polling", "  Zx9_a.b~c-d:70:70:websocket\r\n"],
)
def test_the_socketio_session_id_is_redacted_in_the_handshake_answer(body: str) -> None:
    sid = body.strip().partition(":")[0]
    shown = describe(HttpResponse.build(200, content=body, content_type="text/plain"))
    assert sid not in shown
    assert "<redacted>:" in shown


def test_other_text_is_not_taken_for_a_handshake_answer() -> None:
    shown = describe(HttpResponse.build(200, content="note: a:b", content_type="text/plain"))
    assert "note: a:b" in shown


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"id": "1796553786837"}, 1796553786837),
        ({"id": "x", "originalarrivaltime": "2026-12-01T00:00:01.000Z"}, 1796083201000),
        ({"originalarrivaltime": "2026-12-01T00:00:01"}, None),  # no offset: unknown
        ({"originalarrivaltime": "soon"}, None),
        ({"id": "9" * 30}, None),
        ({"id": "\u00b2", "originalarrivaltime": "\u00b9"}, None),  # digits int() refuses
        ([], None),
        (None, None),
    ],
)
def test_the_catch_up_reads_an_arrival_time_or_none(item: object, expected: int | None) -> None:
    assert _millis(item) == expected


def test_the_trouter_knobs_parse_and_refuse_unknown_steps() -> None:
    scenario = parse_scenario(
        ["trouter_script=" + ",".join(TROUTER_STEPS), "trouter_foreign=surl", "trouter_gzip=yes"]
    )
    assert scenario.trouter_script == TROUTER_STEPS
    assert scenario.trouter_foreign == "surl"
    assert scenario.trouter_gzip
    with pytest.raises(LocalProtocolError, match="unknown Trouter step 'explode'"):
        parse_scenario(["trouter_script=message,explode"])
    with pytest.raises(LocalProtocolError, match="trouter_foreign"):
        parse_scenario(["trouter_foreign=elsewhere"])


def test_the_catch_up_lists_what_arrived_since_the_run_began_and_stops_at_older() -> None:
    from skyproto import Session
    from skyproto.cli._events import _catch_up
    from skyproto.emulator.testing import drive
    from skyproto.events import NewMessageEvent

    since = 1_796_000_000_000
    session = Session(HOSTS, state=teams_state("abc"))
    chat = "19:uni01_4f2a9c@thread.v2"

    def message(ident: str | None, content: str) -> dict[str, object]:
        item: dict[str, object] = {"messagetype": "Text", "content": content, "type": "Message"}
        base = "https://teams.live.com/api/chatsvc/consumer/v1/users/ME"
        item["conversationLink"] = f"{base}/conversations/{chat}"
        item["from"] = f"{base}/contacts/8:live:.cid.b0b"
        if ident is not None:
            item["id"] = ident
            moment = dt.datetime.fromtimestamp(int(ident) / 1000, dt.UTC)
            item["originalarrivaltime"] = moment.isoformat().replace("+00:00", "Z")
        return item

    conversations = {
        "conversations": [
            {"id": chat, "lastMessage": {"id": str(since + 9)}},
            {"id": "8:live:.cid.old", "lastMessage": {"id": str(since - 1)}},  # not listed
        ],
        "_metadata": {},
    }
    newest_first = [
        message(str(since + 9), "newer"),
        message(None, "no time: left out"),
        message(str(since + 5), "new"),
        message(str(since - 1), "older: the listing stops here"),
    ]
    sent: list[HttpRequest] = []
    events = drive(
        _catch_up(session, since),
        [
            HttpResponse.build(200, json=conversations),
            HttpResponse.build(200, json={"messages": newest_first, "_metadata": {}}),
        ],
        sent=sent,
        start=NOW,
    )
    assert [type(e) for e in events] == [NewMessageEvent, NewMessageEvent]
    assert [e.msg_id for e in events] == [since + 5, since + 9]  # oldest first
    assert len(sent) == 2

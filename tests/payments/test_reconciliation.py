"""Reconciliation with the gateways (web/payments/reconciliation.py), offline: the app's Midtrans payments, the real
midtransclient, and the local stand-in of Midtrans' APIs (tests/payments/midtrans_standin.py) saying what the
gateway knows.

- The job that asks about payments still pending settles one whose notification was lost (and confirms its
  booking), outside any transaction, through its lease; it leaves alone what it must not ask about.
- The daily reconciliation keeps what the gateway says, and the managers' page and CSV list the mismatches.

Each test has a database of its own (``own_database``): the jobs read every clinic.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.accounts.helpers import csrf_token, make_person, web_session
from tests.conftest import connected, run_cli, vetbook_command
from tests.db.factories import make_clinic
from tests.payments.helpers import PRICE, Scene, notification, pending_booking, scene, start_payment, state_of
from tests.payments.midtrans_standin import SnapStandIn, snap_standin
from web.accounts import services as account_services
from web.analytics.services import analytics_report, refresh_booking_analytics
from web.app import background_jobs
from web.booking import services as booking_services
from web.core.jobs import run_once_if_free
from web.payments import providers, reconciliation

SERVER_KEY = "SB-Mid-server-VetBookTestServerKey01"
NOTIFICATIONS = "/api/v1/payments/midtrans/notifications"
PAGE = "/manage/payments/reconciliation"
MISMATCH_ROW = re.compile(r'data-testid="mismatch-row" data-kind="([a-z_]+)" data-payment-id="([0-9a-f-]+)"')


@pytest.fixture
def gateway(configure, own_database: str) -> Iterator[SnapStandIn]:
    """The stand-in, and the app configured for Midtrans (Snap and the Core API) on it."""
    with snap_standin(SERVER_KEY) as standin:
        configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY, VETBOOK_MIDTRANS_SNAP_URL=standin.snap_url,
                  VETBOOK_MIDTRANS_API_URL=standin.base_url, VETBOOK_PAYMENT_GATEWAY_TIMEOUT="5")
        yield standin


def job(name: str):
    return next(job for job in background_jobs() if job.name == name)


async def midtrans_payment(client: httpx.AsyncClient, conn: asyncpg.Connection, at: Scene) -> tuple[dict, uuid.UUID]:
    """A booking of the scene's owner and its Midtrans payment, started over the API (pending)."""
    booking = await pending_booking(conn, at)
    answer = await start_payment(client, booking, "midtrans", f"snap-{uuid.uuid4()}", by=at.owner)
    assert answer.status_code == 201, answer.text
    return booking, uuid.UUID(answer.json()["payment_id"])


async def started_minutes_ago(conn: asyncpg.Connection, payment_id: uuid.UUID, minutes: int) -> None:
    await conn.execute("UPDATE payment_records SET created_at = now() - make_interval(mins => $2) "
                       "WHERE payment_id = $1", payment_id, minutes)


async def read_of(conn: asyncpg.Connection, payment_id: uuid.UUID) -> dict | None:
    row = await conn.fetchrow("SELECT known, money_taken, outcome, gateway_status, gross_amount, refunded_amount, "
                              "payment_method, details::text AS details FROM gateway_payment_reads WHERE payment_id = $1",
                              payment_id)
    return dict(row) if row else None


# ------------------------------------------------------------------ payments still pending


async def test_a_payment_whose_notification_was_lost_is_settled_by_the_job(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at = await scene(conn)
    booking, payment_id = await midtrans_payment(client, conn, at)
    # Paid at Midtrans ten minutes ago; the notification never came.
    await started_minutes_ago(conn, payment_id, 10)
    transaction = gateway.set_transaction(payment_id, "settlement", gross_amount=150000, payment_type="gopay")

    assert await run_once_if_free(job("ask_about_pending_payments"))

    after = await state_of(conn, booking["booking_id"])
    assert (after["booking"]["status"], after["booking"]["payment_status"]) == ("confirmed", "paid")
    assert after["booking"]["payment_id"] == payment_id
    [payment] = after["payments"]
    assert (payment["status"], payment["payment_method"]) == ("completed", "gopay")
    assert json.loads(payment["metadata"])["gateway"]["transaction_id"] == transaction["transaction_id"]
    assert [(row["previous_status"], row["new_status"]) for row in after["history"]] == [("pending_payment", "confirmed")]
    read = await read_of(conn, payment_id)
    assert (read["known"], read["money_taken"], read["outcome"], read["gateway_status"], read["gross_amount"]) == (
        True, True, "completed", "settlement", Decimal("150000.00"))
    assert await conn.fetchval("SELECT count(*) FROM job_leases") == 0  # released
    # The late notification, when it comes, changes nothing.
    late = await client.post(NOTIFICATIONS, json=notification("settlement", payment_id, PRICE, SERVER_KEY))
    assert (late.status_code, late.json()["changed"]) == (200, False)


async def test_the_job_asks_only_about_payments_old_enough_and_applies_only_news(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at = await scene(conn)
    _, young = await midtrans_payment(client, conn, at)  # started just now: the customer may still be paying
    _, unknown = await midtrans_payment(client, conn, at)  # Snap opened, no method chosen: Midtrans says 404
    waiting_booking, waiting = await midtrans_payment(client, conn, at)  # a bank transfer not made yet
    expired_booking, expired = await midtrans_payment(client, conn, at)  # its booking expired unpaid
    for payment_id in (unknown, waiting, expired):
        await started_minutes_ago(conn, payment_id, 10)
    gateway.set_transaction(young, "settlement")
    gateway.set_transaction(waiting, "pending", payment_type="bank_transfer")
    gateway.set_transaction(expired, "settlement")
    await conn.execute("UPDATE bookings SET payment_due_at = now() - interval '1 minute' WHERE booking_id = $1",
                       expired_booking["booking_id"])
    assert await booking_services.expire_unpaid_bookings() == 1

    counts = await reconciliation.ask_about_pending_payments()
    again = await reconciliation.ask_about_pending_payments()

    assert counts == {"asked": 2, "answered": 2, "changed": 0, "refused": 0}
    assert again == {"asked": 0, "answered": 0, "changed": 0, "refused": 0}  # asked a moment ago
    asked = sorted(request.path for request in gateway.requests if request.path.endswith("/status"))
    assert asked == sorted([f"/v2/{unknown}/status", f"/v2/{waiting}/status"])
    statuses = dict(await conn.fetch("SELECT payment_id, status FROM payment_records"))
    assert statuses == {young: "pending", unknown: "pending", waiting: "pending", expired: "expired"}
    assert (await read_of(conn, unknown))["known"] is False
    assert (await read_of(conn, waiting))[("outcome")] == "no_change"
    assert await read_of(conn, young) is None and await read_of(conn, expired) is None
    assert (await state_of(conn, waiting_booking["booking_id"]))["booking"]["status"] == "pending_payment"


async def test_no_transaction_is_open_while_the_job_waits_for_the_gateway(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at = await scene(conn)
    booking, payment_id = await midtrans_payment(client, conn, at)
    await started_minutes_ago(conn, payment_id, 10)
    gateway.set_transaction(payment_id, "settlement")
    gateway.hold = True
    running = asyncio.create_task(run_once_if_free(job("ask_about_pending_payments")))
    try:
        assert await asyncio.to_thread(gateway.arrived.wait, 10), "the job never asked the gateway"
        open_transactions = await conn.fetch(
            "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")
        assert open_transactions == []
        # The lease says who runs the job; a second run meanwhile is skipped.
        assert await conn.fetchval("SELECT count(*) FROM job_leases WHERE job_name = 'ask_about_pending_payments' "
                                   "AND expires_at > now()") == 1
        assert await run_once_if_free(job("ask_about_pending_payments")) is False
    finally:
        gateway.release.set()
    assert await running is True
    assert (await state_of(conn, booking["booking_id"]))["booking"]["status"] == "confirmed"


async def test_a_gateway_that_does_not_answer_changes_nothing(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at = await scene(conn)
    booking, payment_id = await midtrans_payment(client, conn, at)
    await started_minutes_ago(conn, payment_id, 10)
    gateway.set_transaction(payment_id, "settlement")
    gateway.core_fail_with = 503

    assert await reconciliation.ask_about_pending_payments() == {"asked": 1, "answered": 0, "changed": 0, "refused": 0}

    assert (await state_of(conn, booking["booking_id"]))["payments"][0]["status"] == "pending"
    assert await read_of(conn, payment_id) is None  # not asked successfully: the next run asks again
    gateway.core_fail_with = None
    assert (await reconciliation.ask_about_pending_payments())["changed"] == 1


async def test_another_amount_at_the_gateway_is_not_applied(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at = await scene(conn)
    booking, payment_id = await midtrans_payment(client, conn, at)
    await started_minutes_ago(conn, payment_id, 10)
    gateway.set_transaction(payment_id, "settlement", gross_amount=1000)

    assert (await reconciliation.ask_about_pending_payments())["refused"] == 1

    assert (await state_of(conn, booking["booking_id"]))["payments"][0]["status"] == "pending"
    assert (await read_of(conn, payment_id))["gross_amount"] == Decimal("1000.00")  # kept for the day's report


async def test_fees_a_gateway_reports_reach_the_payments_and_the_managers_figures(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn, monkeypatch) -> None:
    """Midtrans' answers carry no fee; a gateway whose do (Xendit's) has it kept on the payment by both runs:
    through apply_gateway_report for a payment the job settles, and by the day's reads for one settled already.
    The managers' figures then show revenue net of it."""
    at = await scene(conn)
    booking, pending = await midtrans_payment(client, conn, at)
    _, settled = await midtrans_payment(client, conn, at)
    await client.post(NOTIFICATIONS, json=notification("settlement", settled, PRICE, SERVER_KEY))
    day, noon = clinic_yesterday_noon(at.clinic)  # both made yesterday: old enough to ask about, and one day
    await conn.execute("UPDATE payment_records SET created_at = $1", noon)
    fees = {pending: Decimal("4440.00"), settled: Decimal("3000.00")}

    async def status_with_fee(self, payment_id, provider_payment_id):
        return providers.GatewayReport(outcome=providers.Outcome.COMPLETED, gross_amount=Decimal("150000.00"),
                                       payment_method="ewallet", details={"status": "PAID"}, fee=fees[payment_id])

    monkeypatch.setattr(providers.MidtransProvider, "status", status_with_fee)

    assert (await reconciliation.ask_about_pending_payments())["changed"] == 1
    assert (await reconciliation.reconcile_day(day, at.clinic["clinic_id"], again=True))["answered"] == 2

    stored = dict(await conn.fetch("SELECT payment_id, transaction_fee FROM payment_records"))
    assert stored == fees
    assert dict(await conn.fetch("SELECT payment_id, fee FROM gateway_payment_reads")) == fees
    assert (await state_of(conn, booking["booking_id"]))["booking"]["status"] == "confirmed"
    await refresh_booking_analytics()
    manager = await account_services.load_current_user(
        (await make_person("manager", clinic_id=at.clinic["clinic_id"]))["user_id"])
    created = [row["created_at"].astimezone(ZoneInfo(at.clinic["timezone"])).date()
               for row in await conn.fetch("SELECT created_at FROM bookings")]
    report = await analytics_report(manager, min(created), max(created))
    assert (report.current.revenue, report.current.gateway_fees, report.current.net_revenue) == (
        Decimal("300000.00"), Decimal("7440.00"), Decimal("292560.00"))


# ------------------------------------------------------------------ a clinic's day


def clinic_yesterday_noon(clinic: dict) -> tuple[date, datetime]:
    """The clinic's previous local day and its noon: twelve hours from either end, whatever the time now."""
    zone = ZoneInfo(clinic["timezone"])
    day = datetime.now(zone).date() - timedelta(days=1)
    return day, datetime.combine(day, time(12, 0), tzinfo=zone)


async def day_with_mismatches(client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn):
    """A clinic's yesterday with four Midtrans payments and what the gateway says of them:
    expired here but settled there; settled here for another amount there; partly refunded here but not there;
    settled in both (no mismatch)."""
    at = await scene(conn)
    expired_booking, expired = await midtrans_payment(client, conn, at)
    _, other_amount = await midtrans_payment(client, conn, at)
    _, refunded = await midtrans_payment(client, conn, at)
    _, agreed = await midtrans_payment(client, conn, at)
    await conn.execute("UPDATE bookings SET payment_due_at = now() - interval '1 minute' WHERE booking_id = $1",
                       expired_booking["booking_id"])
    assert await booking_services.expire_unpaid_bookings() == 1
    for payment_id in (other_amount, refunded, agreed):
        answer = await client.post(NOTIFICATIONS, json=notification("settlement", payment_id, PRICE, SERVER_KEY))
        assert answer.json()["status"] == "completed", answer.text
    # 90 % of it returned here (as a cancellation records it), which the gateway never did.
    await conn.execute("UPDATE payment_records SET status = 'partially_refunded', refund_amount = 135000, "
                       "refunded_at = now() WHERE payment_id = $1", refunded)
    # ... and its refund, which we believe the gateway made.
    await conn.execute(
        "INSERT INTO refunds (clinic_id, refund_id, payment_id, booking_id, amount, reason, provider, state, "
        "refund_key, succeeded_at) SELECT clinic_id, $2, payment_id, booking_id, 135000, 'standard_cancellation', "
        "'midtrans', 'succeeded', $3, now() FROM payment_records WHERE payment_id = $1",
        refunded, uuid.uuid4(), f"refund-{uuid.uuid4()}")
    day, noon = clinic_yesterday_noon(at.clinic)
    await conn.execute("UPDATE payment_records SET created_at = $2 WHERE clinic_id = $1", at.clinic["clinic_id"], noon)
    gateway.set_transaction(expired, "settlement", gross_amount=150000)
    gateway.set_transaction(other_amount, "settlement", gross_amount=140000)
    gateway.set_transaction(refunded, "settlement", gross_amount=150000)
    gateway.set_transaction(agreed, "settlement", gross_amount=150000)
    expected = {("paid_there_not_here", str(expired)), ("amount_differs", str(other_amount)),
                ("refunded_here_not_there", str(refunded))}
    return at, day, expected, (expired, other_amount, refunded, agreed)


async def test_the_day_report_lists_the_mismatches_on_the_page_and_in_the_csv(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at, day, expected, payments = await day_with_mismatches(client, conn, gateway)

    counts = await reconciliation.reconcile_day(day, at.clinic["clinic_id"])

    assert counts == {"clinics": 1, "asked": 4, "answered": 4}
    reads = await conn.fetch("SELECT payment_id, money_taken, gross_amount FROM gateway_payment_reads "
                             "WHERE clinic_id = $1", at.clinic["clinic_id"])
    assert {row["payment_id"]: (row["money_taken"], row["gross_amount"]) for row in reads} == {
        payments[0]: (True, Decimal("150000.00")), payments[1]: (True, Decimal("140000.00")),
        payments[2]: (True, Decimal("150000.00")), payments[3]: (True, Decimal("150000.00"))}
    # Run again: everything was already read after the day ended; nothing is asked twice.
    assert (await reconciliation.reconcile_day(day, at.clinic["clinic_id"]))["asked"] == 0

    manager = await make_person("manager", clinic_id=at.clinic["clinic_id"])
    await web_session(client, manager)
    page = await client.get(PAGE, params={"clinic": str(at.clinic["clinic_id"]), "date": day.isoformat()})
    assert page.status_code == 200, page.text
    assert set(MISMATCH_ROW.findall(page.text)) == expected
    assert 'data-payments="4" data-checked="4" data-mismatches="3"' in page.text
    # The page's default is the clinic's yesterday.
    assert set(MISMATCH_ROW.findall((await client.get(PAGE)).text)) == expected

    fragment = await client.get(PAGE, params={"date": day.isoformat()},
                                headers={"HX-Request": "true", "HX-Target": "reconciliation-report"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert set(MISMATCH_ROW.findall(fragment.text)) == expected

    download = await client.get(f"{PAGE}.csv", params={"clinic": str(at.clinic["clinic_id"]), "date": day.isoformat()})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    slug = re.sub(r"[^a-z0-9]+", "-", at.clinic["name"].lower()).strip("-")
    assert download.headers["content-disposition"] == (
        f'attachment; filename="vetbook-reconciliation-{slug}-{day.isoformat()}.csv"')
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {(row["mismatch"], row["payment_id"]) for row in rows} == expected
    other = next(row for row in rows if row["mismatch"] == "amount_differs")
    assert (other["amount"], other["gateway_amount"], other["date"]) == ("150000.00", "140000.00", day.isoformat())
    refund = next(row for row in rows if row["mismatch"] == "refunded_here_not_there")
    assert (refund["our_refunded"], refund["gateway_refunded"]) == ("135000.00", "0.00")
    # The CSV keeps the refund's state as its code; the page says it in words (the manager's language:
    # Indonesian, the default).
    assert refund["refund_states"] == "succeeded"
    assert 'data-states="succeeded">dikembalikan</td>' in page.text


async def test_check_again_asks_the_gateway_afresh_at_most_once_a_minute(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at, day, expected, payments = await day_with_mismatches(client, conn, gateway)
    await reconciliation.reconcile_day(day, at.clinic["clinic_id"])
    # Meanwhile someone refunded it in the gateway's dashboard: the mismatch is gone once asked again.
    gateway.transactions[str(payments[2])]["refunded"] = Decimal("135000")
    gateway.transactions[str(payments[2])]["refund_list"].append({"refund_amount": "135000.00"})
    manager = await make_person("manager", clinic_id=at.clinic["clinic_id"])
    await web_session(client, manager)
    token = await csrf_token(client, f"{PAGE}?date={day.isoformat()}")
    form = {"_csrf_token": token, "clinic": str(at.clinic["clinic_id"]), "date": day.isoformat()}

    checked = await client.post(f"{PAGE}/check", data=form)
    too_soon = await client.post(f"{PAGE}/check", data=form)

    assert checked.status_code == 303 and "checked=1" in checked.headers["location"]
    assert too_soon.status_code == 429 and too_soon.headers["retry-after"]
    assert 'data-testid="reconciliation-notice"' in too_soon.text
    assert sum(request.path == f"/v2/{payments[2]}/status" for request in gateway.requests) == 2
    assert (await read_of(conn, payments[2]))["refunded_amount"] == Decimal("135000.00")
    page = await client.get(checked.headers["location"])
    assert set(MISMATCH_ROW.findall(page.text)) == expected - {("refunded_here_not_there", str(payments[2]))}


async def test_the_page_is_a_managers_of_their_clinic_only(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn) -> None:
    at = await scene(conn)
    other_clinic = await make_clinic(conn)
    day = (datetime.now(ZoneInfo(at.clinic["timezone"])).date() - timedelta(days=1)).isoformat()
    params = {"clinic": str(at.clinic["clinic_id"]), "date": day}

    await web_session(client, await make_person("manager", clinic_id=other_clinic["clinic_id"]))
    assert (await client.get(PAGE, params=params)).status_code == 404
    assert (await client.get(f"{PAGE}.csv", params=params)).status_code == 404
    await web_session(client, await make_person("receptionist", clinic_id=at.clinic["clinic_id"]))
    assert (await client.get(PAGE, params=params)).status_code == 403
    await web_session(client, await make_person("owner"))
    assert (await client.get(PAGE, params=params)).status_code == 403

    await web_session(client, await make_person("manager", clinic_id=at.clinic["clinic_id"]))
    assert (await client.get(PAGE, params=params)).status_code == 200
    tomorrow = (datetime.now(ZoneInfo(at.clinic["timezone"])).date() + timedelta(days=2)).isoformat()
    for bad in ({"date": "2026-13-45"}, {"date": "yesterday"}, {"date": tomorrow}, {"clinic": "not-a-uuid"},
                {"clinic": str(uuid.uuid4())}):
        answer = await client.get(PAGE, params=params | bad)
        assert 400 <= answer.status_code < 500, (bad, answer.status_code)
        assert (await client.get(f"{PAGE}.csv", params=params | bad)).status_code == answer.status_code


async def test_vetbook_reconcile_reads_a_day_from_the_command_line(
        client: httpx.AsyncClient, conn: asyncpg.Connection, gateway: SnapStandIn, own_database: str) -> None:
    at = await scene(conn)
    _, payment_id = await midtrans_payment(client, conn, at)
    day, noon = clinic_yesterday_noon(at.clinic)
    await conn.execute("UPDATE payment_records SET created_at = $2 WHERE payment_id = $1", payment_id, noon)
    gateway.set_transaction(payment_id, "expire")

    result = run_cli(*vetbook_command("reconcile", "--date", day.isoformat(), "--clinic", str(at.clinic["clinic_id"])),
                     database_url=own_database)

    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "reconciled": True, "day": day.isoformat(), "clinics": 1, "asked": 1, "answered": 1}
    read = await read_of(conn, payment_id)
    assert (read["known"], read["money_taken"], read["outcome"], read["gateway_status"]) == (
        True, False, "expired", "expire")
    assert run_cli(*vetbook_command("reconcile", "--date", "2026-02-30"), database_url=own_database,
                   check=False).returncode == 2


# ------------------------------------------------------------------ on Citus


async def test_reconciliation_on_citus(client: httpx.AsyncClient, configure, on_citus: str) -> None:
    """The same runs on a distributed database (tests/conftest.py ``on_citus``; skipped where Citus cannot run):
    every statement of a clinic names it, the reads land on its shard, and the page reads them back."""
    async with connected(on_citus) as conn:
        with snap_standin(SERVER_KEY) as standin:
            configure(VETBOOK_MIDTRANS_SERVER_KEY=SERVER_KEY, VETBOOK_MIDTRANS_SNAP_URL=standin.snap_url,
                      VETBOOK_MIDTRANS_API_URL=standin.base_url, VETBOOK_PAYMENT_GATEWAY_TIMEOUT="5")
            at, day, expected, _ = await day_with_mismatches(client, conn, standin)
            lost_booking, lost = await midtrans_payment(client, conn, at)
            await started_minutes_ago(conn, lost, 10)
            standin.set_transaction(lost, "settlement")

            assert (await reconciliation.ask_about_pending_payments())["changed"] == 1
            assert await reconciliation.reconcile_day(day, at.clinic["clinic_id"]) == {
                "clinics": 1, "asked": 4, "answered": 4}

            assert (await state_of(conn, lost_booking["booking_id"]))["booking"]["status"] == "confirmed"
            assert await conn.fetchval("SELECT count(*) FROM gateway_payment_reads") == 5
            await web_session(client, await make_person("manager", clinic_id=at.clinic["clinic_id"]))
            page = await client.get(PAGE, params={"clinic": str(at.clinic["clinic_id"]), "date": day.isoformat()})
            assert page.status_code == 200, page.text
            assert set(MISMATCH_ROW.findall(page.text)) == expected

"""The owner's booking pages over HTTP, without JavaScript: my bookings, the booking with its QR code,
paying, cancelling with the refund shown first, rescheduling, and their errors. Every check of a change
reads the database."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx

from tests.accounts.helpers import web_session
from tests.booking.conftest import (
    PRICE,
    BookedScene,
    attr_of,
    booking_row,
    complete_sandbox_payment,
    form_token,
    page_owner,
    text_of,
)
from tests.db.factories import local_start, start_between
from web.booking import services as booking_services
from web.booking.codes import display_booking_code
from web.booking.pages.bookings import booking_qr_svg
from web.core import sql
from web.payments import services as payment_services

VERSION_INPUT = re.compile(r'name="version" value="(\d+)"')
KEY_INPUT = re.compile(r'name="idempotency_key" value="([^"]+)"')


# ------------------------------------------------------------------ my bookings and the booking page


async def test_my_bookings_lists_upcoming_and_past_in_human_words(owner_client: httpx.AsyncClient,
                                                                  booked_scene: BookedScene) -> None:
    waiting = await booked_scene.booking()
    paid = await booked_scene.paid_booking(days_ahead=6)
    cancelled = await booked_scene.booking(days_ahead=7)
    await booking_services.cancel(booked_scene.owner, cancelled["booking_id"], "pet_unwell", cancelled["version"])

    page = await owner_client.get("/bookings")
    assert page.status_code == 200
    upcoming, past = page.text.split('data-testid="past-section"')
    assert str(waiting["booking_id"]) in upcoming and str(paid["booking_id"]) in upcoming
    assert str(cancelled["booking_id"]) in past and str(cancelled["booking_id"]) not in upcoming
    # Soonest first, with the words a person reads (not the engine's codes).
    assert upcoming.index(str(waiting["booking_id"])) < upcoming.index(str(paid["booking_id"]))
    assert "Waiting for payment" in upcoming and "Not paid yet" in upcoming
    assert "Confirmed" in upcoming and "Paid" in upcoming
    assert "Cancelled" in past
    assert "pending_payment<" not in page.text
    assert "Vaccination" in page.text and "Bento" in page.text and "WITA" in page.text
    assert 'data-testid="nav-bookings"' in page.text


async def test_booking_page_shows_the_qr_code_and_the_short_code(owner_client: httpx.AsyncClient,
                                                                 booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    code = (await booking_row(booking["booking_id"]))["booking_code"]

    page = await owner_client.get(f"/bookings/{booking['booking_id']}")
    assert page.status_code == 200
    assert text_of(page.text, "booking-code") == display_booking_code(code)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", display_booking_code(code))
    assert attr_of(page.text, "booking-qr", "data-code") == code
    # The QR code is the booking code itself, drawn on the server.
    assert str(booking_qr_svg(code)) in page.text and "<svg" in page.text
    assert "Jl. Sunset Road 88, Kuta" in text_of(page.text, "booking-address")
    assert "WITA" in text_of(page.text, "booking-time")
    assert text_of(page.text, "booking-amount") == "IDR150,000"
    assert "WITA" in text_of(page.text, "payment-deadline")
    for link in ("link-pay", "link-reschedule", "link-cancel"):
        assert f'data-testid="{link}"' in page.text


async def test_a_cancelled_booking_offers_no_pay_cancel_or_reschedule(owner_client: httpx.AsyncClient,
                                                                      booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    await booking_services.cancel(booked_scene.owner, booking["booking_id"], "other", booking["version"])
    page = await owner_client.get(f"/bookings/{booking['booking_id']}")
    for link in ("link-pay", "link-reschedule", "link-cancel", "payment-deadline"):
        assert f'data-testid="{link}"' not in page.text
    cancel_page = await owner_client.get(f"/bookings/{booking['booking_id']}/cancel")
    assert 'data-testid="cannot-cancel"' in cancel_page.text and "<select" not in cancel_page.text


async def test_someone_elses_booking_is_not_found_and_stays_unchanged(app, owner_client: httpx.AsyncClient,
                                                                      booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    other_row, _other, _pet = await page_owner()
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                 headers={"Accept-Language": "en"}) as other:
        await web_session(other, other_row)
        _page, token = await form_token(other, "/bookings")
        base = f"/bookings/{booking['booking_id']}"
        for path in (base, f"{base}/pay", f"{base}/cancel", f"{base}/reschedule"):
            assert (await other.get(path)).status_code == 404, path
        form = {"_csrf_token": token, "version": "1", "reason": "other", "provider": "clinic",
                "idempotency_key": "web-abcdefghijk", "slot_id": str(await booked_scene.slot())}
        for path in (f"{base}/pay", f"{base}/cancel", f"{base}/reschedule"):
            answer = await other.post(path, data=form)
            assert answer.status_code == 404, path
            assert "Vaccination" not in answer.text
        mine = await other.get("/bookings")
        assert str(booking["booking_id"]) not in mine.text
    after = await booking_row(booking["booking_id"])
    assert (after["status"], after["version"], after["payment_due_at"]) == (
        "pending_payment", booking["version"], booking["payment_due_at"])
    assert await sql.fetchval("SELECT count(*) FROM payment_records WHERE booking_id = $1", booking["booking_id"]) == 0


# ------------------------------------------------------------------ paying


async def test_pay_in_the_sandbox_once_even_when_the_form_is_sent_twice(owner_client: httpx.AsyncClient,
                                                                        booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    page, token = await form_token(owner_client, f"/bookings/{booking['booking_id']}/pay")
    assert text_of(page.text, "pay-amount") == "IDR150,000"
    assert "WITA" in text_of(page.text, "payment-deadline")
    assert attr_of(page.text, "pay-state", "data-state") == "due"
    key = KEY_INPUT.search(page.text).group(1)
    form = {"_csrf_token": token, "provider": "sandbox", "idempotency_key": key}

    first = await owner_client.post(f"/bookings/{booking['booking_id']}/pay", data=form)
    second = await owner_client.post(f"/bookings/{booking['booking_id']}/pay", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    payments = await sql.fetch("SELECT payment_id, status FROM payment_records WHERE booking_id = $1",
                               booking["booking_id"])
    assert len(payments) == 1
    assert first.headers["location"] == f"/sandbox/pay/{payments[0]['payment_id']}"
    # A new render gives a new key: the next attempt is a new payment.
    assert KEY_INPUT.search((await owner_client.get(f"/bookings/{booking['booking_id']}/pay")).text).group(1) != key

    pending = await owner_client.get(f"/bookings/{booking['booking_id']}/pay")
    assert attr_of(pending.text, "pay-state", "data-state") == "pending"
    payment = dict(await sql.fetchrow("SELECT * FROM payment_records WHERE booking_id = $1", booking["booking_id"]))
    await complete_sandbox_payment(payment)
    paid = await owner_client.get(f"/bookings/{booking['booking_id']}/pay")
    assert attr_of(paid.text, "pay-state", "data-state") == "paid"
    assert 'data-testid="pay-form"' not in paid.text
    assert (await booking_row(booking["booking_id"]))["status"] == "confirmed"


async def test_a_query_string_cannot_make_the_page_say_paid(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    page = await owner_client.get(f"/bookings/{booking['booking_id']}/pay?status=paid&transaction_status=settlement")
    assert attr_of(page.text, "pay-state", "data-state") == "due"


async def test_a_declined_payment_shows_failed_and_can_be_tried_again(owner_client: httpx.AsyncClient,
                                                                      booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    page, token = await form_token(owner_client, f"/bookings/{booking['booking_id']}/pay")
    await owner_client.post(f"/bookings/{booking['booking_id']}/pay", data={
        "_csrf_token": token, "provider": "sandbox", "idempotency_key": KEY_INPUT.search(page.text).group(1)})
    payment = dict(await sql.fetchrow("SELECT * FROM payment_records WHERE booking_id = $1", booking["booking_id"]))
    await complete_sandbox_payment(payment, approve=False)
    failed = await owner_client.get(f"/bookings/{booking['booking_id']}/pay")
    assert attr_of(failed.text, "pay-state", "data-state") == "failed"
    assert 'data-testid="pay-sandbox"' in failed.text


async def test_pay_at_the_clinic_waits_until_the_visit(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    page, token = await form_token(owner_client, f"/bookings/{booking['booking_id']}/pay")
    answer = await owner_client.post(f"/bookings/{booking['booking_id']}/pay", data={
        "_csrf_token": token, "provider": "clinic", "idempotency_key": KEY_INPUT.search(page.text).group(1)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/bookings/{booking['booking_id']}"
    row = await booking_row(booking["booking_id"])
    start = await sql.fetchval("SELECT start_time FROM slots WHERE slot_id = $1", row["slot_id"])
    assert row["status"] == "pending_payment" and row["payment_due_at"] == start
    again = await owner_client.get(f"/bookings/{booking['booking_id']}/pay")
    assert attr_of(again.text, "pay-state", "data-state") == "at_desk"


async def test_an_unpaid_booking_past_its_deadline_shows_expired(owner_client: httpx.AsyncClient,
                                                                 booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    await sql.execute("UPDATE bookings SET payment_due_at = now() - interval '1 minute' WHERE booking_id = $1",
                      booking["booking_id"])
    assert await booking_services.expire_unpaid_bookings() == 1
    page = await owner_client.get(f"/bookings/{booking['booking_id']}/pay")
    assert attr_of(page.text, "pay-state", "data-state") == "expired"
    assert 'data-testid="pay-form"' not in page.text


async def test_bad_payment_forms_are_refused_with_a_message(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    page, token = await form_token(owner_client, f"/bookings/{booking['booking_id']}/pay")
    path = f"/bookings/{booking['booking_id']}/pay"
    no_key = await owner_client.post(path, data={"_csrf_token": token, "provider": "sandbox"})
    assert no_key.status_code == 422 and 'data-testid="form-error"' in no_key.text
    bad_provider = await owner_client.post(path, data={"_csrf_token": token, "provider": "bitcoin",
                                                       "idempotency_key": KEY_INPUT.search(page.text).group(1)})
    assert bad_provider.status_code == 422
    assert "not available" in text_of(bad_provider.text, "form-error")
    assert await sql.fetchval("SELECT count(*) FROM payment_records WHERE booking_id = $1", booking["booking_id"]) == 0
    paid = await booked_scene.paid_booking(days_ahead=8)
    page, token = await form_token(owner_client, f"/bookings/{paid['booking_id']}/pay")
    assert 'data-testid="pay-form"' not in page.text
    again = await owner_client.post(f"/bookings/{paid['booking_id']}/pay", data={
        "_csrf_token": token, "provider": "sandbox", "idempotency_key": "web-stale-form-key"})
    assert again.status_code == 409 and "already paid" in text_of(again.text, "form-error")


# ------------------------------------------------------------------ cancelling


async def test_the_refund_shown_before_cancelling_is_what_the_engine_refunds(owner_client: httpx.AsyncClient,
                                                                             booked_scene: BookedScene) -> None:
    booking = await booked_scene.paid_booking()
    path = f"/bookings/{booking['booking_id']}/cancel"
    page, token = await form_token(owner_client, path)
    expected = booking_services.refund_amount(booking["final_amount"], booking_services.STANDARD_POLICY)
    assert Decimal(attr_of(page.text, "refund-amount", "data-amount")) == expected == Decimal("135000")
    assert text_of(page.text, "refund-amount") == "IDR135,000"
    assert "90%" in text_of(page.text, "refund-policy")

    answer = await owner_client.post(path, data={"_csrf_token": token, "reason": "schedule_conflict",
                                                 "version": VERSION_INPUT.search(page.text).group(1)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/bookings/{booking['booking_id']}"
    row = await booking_row(booking["booking_id"])
    assert (row["status"], row["refunded_amount"], row["cancellation_reason"]) == (
        "cancelled", expected, "schedule_conflict")
    shown = await owner_client.get(f"/bookings/{booking['booking_id']}")
    assert text_of(shown.text, "booking-refunded") == "IDR135,000"


async def test_a_late_cancellation_shows_no_refund(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    # Well past the clinic's 60-minute booking notice, well inside its 24-hour refund deadline.
    start = start_between(booked_scene.timezone, earliest=timedelta(hours=4), latest=timedelta(hours=20))
    booking = await booked_scene.paid_booking(start=start)
    page = await owner_client.get(f"/bookings/{booking['booking_id']}/cancel")
    assert Decimal(attr_of(page.text, "refund-amount", "data-amount")) == 0
    assert "No refund" in text_of(page.text, "refund-policy")


async def test_an_unpaid_booking_shows_nothing_to_refund(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    page = await owner_client.get(f"/bookings/{booking['booking_id']}/cancel")
    assert Decimal(attr_of(page.text, "refund-amount", "data-amount")) == 0
    assert "Nothing was paid" in text_of(page.text, "refund-policy")


async def test_cancelling_a_booking_that_changed_meanwhile_shows_a_conflict_and_the_current_state(
        owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    path = f"/bookings/{booking['booking_id']}/cancel"
    page, token = await form_token(owner_client, path)
    assert "Waiting for payment" in text_of(page.text, "booking-status")
    stale_version = VERSION_INPUT.search(page.text).group(1)
    # Meanwhile the payment arrives: the booking is confirmed (a new version).
    payment, _ = await payment_services.create_payment(
        booked_scene.owner, booking["booking_id"], "sandbox", f"test-{uuid.uuid4()}")
    await complete_sandbox_payment(payment)

    answer = await owner_client.post(path, data={"_csrf_token": token, "reason": "other", "version": stale_version})
    assert answer.status_code == 409
    assert "changed while you were looking" in text_of(answer.text, "version-conflict")
    assert text_of(answer.text, "booking-status") == "Confirmed"
    assert VERSION_INPUT.search(answer.text).group(1) != stale_version
    # The paid booking now shows its refund before anything is cancelled.
    assert Decimal(attr_of(answer.text, "refund-amount", "data-amount")) == Decimal("135000")
    assert (await booking_row(booking["booking_id"]))["status"] == "confirmed"


async def test_bad_cancel_forms_are_refused_with_a_message(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking()
    path = f"/bookings/{booking['booking_id']}/cancel"
    _page, token = await form_token(owner_client, path)
    bad_reason = await owner_client.post(path, data={"_csrf_token": token, "reason": "because", "version": "1"})
    assert bad_reason.status_code == 422 and 'data-testid="error-reason"' in bad_reason.text
    no_version = await owner_client.post(path, data={"_csrf_token": token, "reason": "other", "version": "x"})
    assert no_version.status_code == 422 and 'data-testid="form-error"' in no_version.text
    long_notes = await owner_client.post(path, data={"_csrf_token": token, "reason": "other", "version": "1",
                                                     "notes": "x" * 2001})
    assert long_notes.status_code == 422 and 'data-testid="error-notes"' in long_notes.text
    row = await booking_row(booking["booking_id"])
    assert (row["status"], row["version"]) == ("pending_payment", booking["version"])


# ------------------------------------------------------------------ rescheduling


@dataclass
class RescheduleForm:
    """A booking's reschedule page as loaded, ready to be submitted."""

    client: httpx.AsyncClient
    path: str
    page: httpx.Response
    token: str

    async def move_to(self, slot_id: object) -> httpx.Response:
        """Choose ``slot_id`` and submit, with the booking version the page carries."""
        return await self.client.post(self.path, data={"_csrf_token": self.token, "slot_id": str(slot_id),
                                                       "version": VERSION_INPUT.search(self.page.text).group(1)})


async def reschedule_form(client: httpx.AsyncClient, booking: dict, day_of: object = None) -> RescheduleForm:
    """Open ``booking``'s reschedule page, on the day of the slot ``day_of`` when given."""
    path = f"/bookings/{booking['booking_id']}/reschedule"
    day = await sql.fetchval("SELECT date FROM slots WHERE slot_id = $1", day_of) if day_of else None
    page, token = await form_token(client, f"{path}?day={day.isoformat()}" if day else path)
    return RescheduleForm(client, path, page, token)


async def test_reschedule_to_another_free_slot_of_the_same_service(owner_client: httpx.AsyncClient,
                                                                   booked_scene: BookedScene) -> None:
    booking = await booked_scene.paid_booking(days_ahead=5, hour=9)
    target = await booked_scene.slot(days_ahead=6, hour=11)
    form = await reschedule_form(owner_client, booking, day_of=target)
    assert f'data-slot-id="{target}"' in form.page.text and re.search(r"Move to 11:00\s?AM WITA", form.page.text)

    answer = await form.move_to(target)
    assert answer.status_code == 303
    moved = await sql.fetchrow("SELECT * FROM bookings WHERE rescheduled_from_booking_id = $1", booking["booking_id"])
    assert answer.headers["location"] == f"/bookings/{moved['booking_id']}"
    assert (moved["slot_id"], moved["status"], moved["payment_status"]) == (target, "confirmed", "paid")
    assert (await booking_row(booking["booking_id"]))["status"] == "rescheduled"
    old_page = await owner_client.get(f"/bookings/{booking['booking_id']}")
    assert attr_of(old_page.text, "rescheduled-to", "href") == f"/bookings/{moved['booking_id']}"


async def test_the_reschedule_page_offers_only_prices_the_engine_accepts_and_shows_the_money(
        owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.paid_booking(days_ahead=5, hour=9)
    cheaper = await booked_scene.slot(days_ahead=6, hour=10, price=Decimal("100000"))
    pricier = await booked_scene.slot(days_ahead=6, hour=11, price=Decimal("200000"))
    same = await booked_scene.slot(days_ahead=6, hour=12)
    form = await reschedule_form(owner_client, booking, day_of=cheaper)
    page = form.page
    assert f'data-slot-id="{cheaper}"' in page.text and f'data-slot-id="{same}"' in page.text
    assert f'data-slot-id="{pricier}"' not in page.text  # a paid booking cannot move to a pricier time
    assert 'data-testid="reschedule-price-rule"' in page.text
    assert Decimal(attr_of(page.text, "reschedule-refund", "data-amount")) == Decimal("50000")

    answer = await form.move_to(cheaper)
    assert answer.status_code == 303
    moved = await owner_client.get(answer.headers["location"])
    assert Decimal(attr_of(moved.text, "price-difference-returned", "data-amount")) == Decimal("50000")
    # Posting the pricier slot anyway is refused with the reason, and nothing changes.
    current = await sql.fetchrow("SELECT booking_id, version, final_amount FROM bookings "
                                 "WHERE rescheduled_from_booking_id = $1", booking["booking_id"])
    assert current["final_amount"] == Decimal("100000")
    refused = await owner_client.post(f"/bookings/{current['booking_id']}/reschedule", data={
        "_csrf_token": form.token, "slot_id": str(pricier), "version": str(current["version"])})
    assert refused.status_code == 409 and "costs more than was paid" in text_of(refused.text, "form-error")
    assert (await booking_row(current["booking_id"]))["status"] == "confirmed"


async def test_a_free_visit_moved_to_a_priced_time_asks_for_the_price(owner_client: httpx.AsyncClient,
                                                                      booked_scene: BookedScene) -> None:
    free = await booked_scene.booking(days_ahead=5, hour=9, price=Decimal(0))
    assert free["status"] == "confirmed"
    priced = await booked_scene.slot(days_ahead=6, hour=10)
    form = await reschedule_form(owner_client, free, day_of=priced)
    assert Decimal(attr_of(form.page.text, "reschedule-to-pay", "data-amount")) == PRICE
    answer = await form.move_to(priced)
    assert answer.status_code == 303
    moved = await owner_client.get(answer.headers["location"])
    assert attr_of(moved.text, "booking-status", "data-status") == "pending_payment"
    assert 'data-testid="link-pay"' in moved.text


async def test_reschedule_to_a_slot_just_taken_says_so(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking(days_ahead=5, hour=9)
    target = await booked_scene.slot(days_ahead=5, hour=12)
    form = await reschedule_form(owner_client, booking)
    assert f'data-slot-id="{target}"' in form.page.text
    # Someone else takes the last place first.
    _row, other, other_pet = await page_owner()
    await booking_services.hold(other, target, other_pet)

    answer = await form.move_to(target)
    assert answer.status_code == 409
    assert "just taken" in text_of(answer.text, "form-error")
    assert f'data-slot-id="{target}"' not in answer.text
    row = await booking_row(booking["booking_id"])
    assert (row["status"], row["version"]) == ("pending_payment", booking["version"])


async def test_reschedule_of_a_booking_that_changed_meanwhile_shows_a_conflict(owner_client: httpx.AsyncClient,
                                                                               booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking(days_ahead=5, hour=9)
    target = await booked_scene.slot(days_ahead=5, hour=13)
    form = await reschedule_form(owner_client, booking)
    await booking_services.cancel(booked_scene.owner, booking["booking_id"], "other", booking["version"])
    answer = await form.move_to(target)
    assert answer.status_code == 409
    assert 'data-testid="version-conflict"' in answer.text
    assert text_of(answer.text, "booking-status") == "Cancelled"
    assert 'data-testid="cannot-reschedule"' in answer.text
    assert await sql.fetchval("SELECT remaining FROM slots WHERE slot_id = $1", target) == 1


async def test_bad_reschedule_input_is_refused_with_a_message(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.booking(days_ahead=5, hour=9)
    path = f"/bookings/{booking['booking_id']}/reschedule"
    bad_day = await owner_client.get(f"{path}?day=tomorrow")
    assert bad_day.status_code == 422 and 'data-testid="error-day"' in bad_day.text
    _page, token = await form_token(owner_client, path)
    for slot_id in ("not-a-slot", str(uuid.uuid4())):
        answer = await owner_client.post(path, data={"_csrf_token": token, "slot_id": slot_id, "version": "1"})
        assert answer.status_code == 422 and "Choose one of the free times" in text_of(answer.text, "form-error")
    other_service = await sql.fetchval(
        "INSERT INTO services (clinic_id, name, duration_minutes, price) VALUES ($1, 'Grooming', 30, $2) "
        "RETURNING service_id", booked_scene.clinic_id, PRICE)
    start = local_start({"timezone": booked_scene.timezone}, days_ahead=4, hour=10)
    foreign_slot = await sql.fetchval(
        "INSERT INTO slots (clinic_id, service_id, date, start_time, end_time, capacity, remaining) "
        "VALUES ($1, $2, ($3 AT TIME ZONE 'Asia/Makassar')::date, $3, $3 + interval '30 minutes', 1, 1) "
        "RETURNING slot_id", booked_scene.clinic_id, other_service, start)
    answer = await owner_client.post(path, data={"_csrf_token": token, "slot_id": str(foreign_slot), "version": "1"})
    assert answer.status_code == 422 and "same service" in text_of(answer.text, "form-error")
    row = await booking_row(booking["booking_id"])
    assert (row["status"], row["version"]) == ("pending_payment", booking["version"])


async def test_the_pages_render_in_indonesian_and_japanese(owner_client: httpx.AsyncClient, booked_scene: BookedScene) -> None:
    booking = await booked_scene.paid_booking()
    base = f"/bookings/{booking['booking_id']}"
    for language, price in (("id", "Rp150.000"), ("ja", "￥150,000")):
        for path in ("/bookings", base, f"{base}/pay", f"{base}/cancel", f"{base}/reschedule"):
            page = await owner_client.get(path, headers={"Accept-Language": language})
            assert page.status_code == 200, (language, path)
            assert page.headers["content-language"] == language
        shown = await owner_client.get(base, headers={"Accept-Language": language})
        assert "WITA" in text_of(shown.text, "booking-time")
        assert text_of(shown.text, "booking-amount") in (price, "IDR 150,000", "IDR150,000", "Rp 150.000")

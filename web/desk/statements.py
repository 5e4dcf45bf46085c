"""The desk's SQL: reads that join bookings, slots, pets and owners on the composite partition keys (which a
Piccolo ForeignKey, one column, cannot express without losing partition pruning), and the owner look-ups by
the phone-number expression its index is built on. Run by web/desk/services.py."""

from web.slots.statements import BOOKABLE_AT_DESK

# A desk finds an owner by a whole phone number or email address, never by a part of one: a receptionist
# is looking for the person in front of them (or on the phone), not browsing the platform's owners. Owners
# who already booked at the clinic come first and are shown with their contact details; anyone else only
# with their name, their pets and the last digits of their phone. Every search and every owner opened is
# recorded in desk_owner_lookups (who, where, when, what was typed, whom it showed), and an owner can be
# opened by id only when they booked at one of the staff member's clinics or this staff member found them
# by phone or email within FOUND_OWNER_HOURS.
FOUND_OWNER_HOURS = 12
MAX_OWNER_MATCHES = 10


# One query for the whole grid. Both partitioned tables are filtered by their clinic and the day: slots by
# their partition key (date: one partition), bookings by (clinic_id, slot_date) and joined on slot_id
# (bookings_slot_id_idx); bookings are partitioned by created_at, which the day says nothing about.
DAY_GRID = """
SELECT s.slot_id, s.start_time, s.end_time, s.status AS slot_status, s.capacity, s.remaining,
       s.staff_id, st.name AS staff_name, sv.name AS service_name,
       b.booking_id, b.booking_code, b.status, b.payment_status, b.booking_source, b.version,
       p.name AS pet_name, p.species, u.name AS owner_name, u.phone AS owner_phone
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
LEFT JOIN staff st ON st.staff_id = s.staff_id
LEFT JOIN (
    bookings b
    JOIN pets p ON p.pet_id = b.pet_id
    JOIN users u ON u.user_id = b.user_id
) ON b.slot_id = s.slot_id AND b.slot_date = s.date
     AND b.clinic_id = $1 AND b.slot_date = $2 AND b.status <> ALL($3::text[])
WHERE s.clinic_id = $1 AND s.date = $2
ORDER BY s.start_time, st.name NULLS LAST, s.staff_id, sv.name, s.slot_id, b.created_at
"""

# A booking with everything the desk's page shows (seven tables, the slot on its whole key).
DESK_BOOKING = """
SELECT b.booking_id, b.booking_code, b.status, b.payment_status, b.booking_source, b.version, b.notes,
       b.final_amount, b.refunded_amount, b.currency, b.payment_due_at, b.created_at, b.clinic_id, b.slot_date,
       b.user_id AS owner_id, s.start_time, s.end_time, s.status AS slot_status,
       c.name AS clinic_name, c.timezone, sv.name AS service_name, st.name AS staff_name,
       p.pet_id, p.name AS pet_name, p.species, p.breed,
       u.name AS owner_name, u.phone AS owner_phone, u.email AS owner_email
FROM bookings b
JOIN slots s ON s.clinic_id = b.clinic_id AND s.slot_id = b.slot_id AND s.date = b.slot_date
JOIN clinics c ON c.clinic_id = b.clinic_id
JOIN services sv ON sv.service_id = b.service_id
LEFT JOIN staff st ON st.staff_id = b.staff_id
JOIN pets p ON p.pet_id = b.pet_id
JOIN users u ON u.user_id = b.user_id
"""

# {condition} is one of BY_PHONE, BY_EMAIL, BY_ID below (never user input). Owners are a reference table (every
# node has them); whether they booked here is asked of the bookings separately (OWNERS_KNOWN_AT), because a
# subquery correlated with a reference table is not something Citus runs (docs/scaling.md). A whole phone
# number or email names a handful of people: the first MATCHES_READ by name are read, the known ones first.
OWNER_MATCHES = f"""
SELECT u.user_id, u.name, u.phone, u.email
FROM users u
WHERE u.role = 'owner' AND u.is_active AND {{condition}}
ORDER BY u.name, u.user_id
LIMIT {MAX_OWNER_MATCHES * 5}
"""

# Which of these owners ($2) booked at one of these clinics ($1).
OWNERS_KNOWN_AT = """
SELECT DISTINCT user_id FROM bookings WHERE clinic_id = ANY($1::uuid[]) AND user_id = ANY($2::uuid[])
"""

# The expression of users_owner_phone_key_idx (migration 0016), so the index finds the number.
BY_PHONE = "u.phone IS NOT NULL AND vetbook_phone_key(u.phone) = $1"

BY_EMAIL = "u.email = $1"

BY_ID = "u.user_id = $1"

# The pets of the owners found, in one query.
PETS_OF = """
SELECT pet_id, owner_id, name, species FROM pets WHERE owner_id = ANY($1::uuid[]) ORDER BY name, pet_id
"""

# May this staff member open this owner: booked at their clinics, or found by them lately.
MAY_OPEN_OWNER = f"""
SELECT EXISTS (SELECT 1 FROM bookings WHERE user_id = $1 AND clinic_id = ANY($2::uuid[]))
    OR EXISTS (SELECT 1 FROM desk_owner_lookups
               WHERE staff_user_id = $3 AND looked_up_at > now() - interval '{FOUND_OWNER_HOURS} hours'
                 AND kind IN ('phone', 'email') AND $1 = ANY(owner_ids))
"""

# What the engine's book_on_behalf can take (web/slots/statements.py TAKE_PLACE without the online booking notice).
FREE_SLOTS = f"""
SELECT s.slot_id, s.start_time, s.end_time, s.remaining, s.capacity, sv.name AS service_name,
       st.name AS staff_name, COALESCE(s.price, sv.price) AS price, sv.currency
FROM slots s
JOIN services sv ON sv.service_id = s.service_id
LEFT JOIN staff st ON st.staff_id = s.staff_id
WHERE s.clinic_id = $1 AND s.date = $2 AND {BOOKABLE_AT_DESK}
ORDER BY s.start_time, sv.name, st.name NULLS LAST
"""

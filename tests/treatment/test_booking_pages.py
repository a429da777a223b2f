"""The booking page, the chairs page and the calendar (day and week; by chair, room and
staff), with their query budgets."""

from __future__ import annotations

from datetime import date, timedelta

from django.urls import reverse

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Appointment, Chair, ChairSlot
from tests.conftest import register, signed_in
from tests.patients.test_query_budgets import assert_same_count, queries
from tests.treatment import helpers

START = date(2030, 3, 4)  # a Monday


def _course(world, name: str = "Ann"):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber, given_name=name)
    return helpers.esketamine_course(patient, world.prescriber, start=START)


def _book_url(appointment) -> str:  # type: ignore[no-untyped-def]
    return reverse("treatment:book", kwargs={"appointment_id": appointment.pk})


def _form(appointment, chair, day, hour="10:00", **extra):  # type: ignore[no-untyped-def]
    data = {
        "day": day.isoformat(),
        "start_time": hour,
        "chair": chair.pk,
        "staff": "",
        "reason": "",
        "version": appointment.version,
    }
    data.update(extra)
    return data


def test_the_front_desk_moves_a_session_inside_its_window(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    third = course.appointments.get(number=3)
    client = signed_in(world.staff_a["front_desk"])
    response = client.post(_book_url(third), _form(third, chair, third.latest))
    assert response.status_code == 302
    third.refresh_from_db()
    assert third.status == "booked" and third.move_reason == ""


def test_outside_the_window_the_page_asks_for_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    third = course.appointments.get(number=3)
    client = signed_in(world.staff_a["front_desk"])
    late = third.latest + timedelta(days=2)
    response = client.post(_book_url(third), _form(third, chair, late))
    assert response.status_code == 200
    assert b"outside this session&#x27;s window" in response.content
    third.refresh_from_db()
    assert third.starts_at is None
    response = client.post(_book_url(third), _form(third, chair, late, reason="Snowstorm."))
    assert response.status_code == 302
    third.refresh_from_db()
    assert third.move_reason == "Snowstorm."
    assert AuditEntry.objects.filter(object_type="appointment", reason="Snowstorm.").exists()


def test_the_page_refuses_a_second_booking_of_the_same_chair_and_time(world) -> None:  # type: ignore[no-untyped-def]
    a = _course(world, "Ann").appointments.get(number=2)
    b = _course(world, "Bob").appointments.get(number=2)
    chair = helpers.chair(world.clinic_a)
    client = signed_in(world.staff_a["front_desk"])
    assert client.post(_book_url(a), _form(a, chair, a.target)).status_code == 302
    response = client.post(_book_url(b), _form(b, chair, b.target))
    assert response.status_code == 200
    assert b"Chair 1 is already booked at" in response.content
    assert not ChairSlot.objects.filter(appointment=b).exists()


def test_the_page_warns_when_a_booking_goes_past_the_authorisation(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(
        patient, world.prescriber, start=START, insurance={"authorized_sessions": 1}
    )
    chair = helpers.chair(world.clinic_a)
    desk = Actor.system(world.clinic_a, user=world.staff_a["front_desk"], label="test")
    one = course.appointments.get(number=1)
    services.book(desk, one, starts_at=helpers.at(world.clinic_a, one.target), chair=chair)
    two = course.appointments.get(number=2)
    response = signed_in(world.staff_a["front_desk"]).post(
        _book_url(two), _form(two, chair, two.target), follow=True
    )
    assert b"the payer authorised 1" in response.content


def test_an_auditor_cannot_book(world) -> None:  # type: ignore[no-untyped-def]
    appointment = _course(world).appointments.get(number=2)
    chair = helpers.chair(world.clinic_a)
    response = signed_in(world.staff_a["auditor"]).post(
        _book_url(appointment), _form(appointment, chair, appointment.target)
    )
    assert response.status_code == 403


def test_it_hides_other_clinics_appointments(world) -> None:  # type: ignore[no-untyped-def]
    appointment = _course(world).appointments.get(number=2)
    assert signed_in(world.admin_b).get(_book_url(appointment)).status_code == 404


# --- chairs -------------------------------------------------------------------------------------


def test_a_clinic_admin_adds_a_chair(world) -> None:  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a["clinic_admin"])
    url = reverse("treatment:chairs")
    response = client.post(url, {"name": "Chair 9", "room": "East", "capacity": 2})
    assert response.status_code == 302
    assert Chair.objects.get().capacity == 2
    assert AuditEntry.objects.filter(object_type="chair").count() == 1
    again = client.post(url, {"name": "Chair 9", "room": "", "capacity": 1})
    assert b"A chair with this name exists." in again.content
    assert Chair.objects.count() == 1


def test_the_front_desk_cannot_add_a_chair(world) -> None:  # type: ignore[no-untyped-def]
    response = signed_in(world.staff_a["front_desk"]).post(
        reverse("treatment:chairs"), {"name": "Chair 9", "capacity": 1}
    )
    assert response.status_code == 403
    assert not Chair.objects.exists()


# --- calendar -----------------------------------------------------------------------------------


def _booked_week(world) -> tuple[Appointment, Appointment]:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = Chair.objects.create(clinic=world.clinic_a, name="Chair 1", room="East")
    desk = Actor.system(world.clinic_a, user=world.staff_a["front_desk"], label="test")
    one, two = course.appointments.get(number=1), course.appointments.get(number=2)
    services.book(
        desk,
        one,
        starts_at=helpers.at(world.clinic_a, one.target, 9),
        chair=chair,
        staff=world.nurse,
    )
    services.book(desk, two, starts_at=helpers.at(world.clinic_a, two.target, 13), chair=chair)
    return one, two


def test_the_week_view_by_chair_shows_each_booking_on_its_day(world) -> None:  # type: ignore[no-untyped-def]
    one, two = _booked_week(world)
    url = reverse("treatment:calendar") + f"?date={START + timedelta(days=2)}&view=week&by=chair"
    page = signed_in(world.staff_a["front_desk"]).get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Week of March 4, 2030" in text
    assert "Chair 1 · East" in text
    assert text.count('class="booking') == 2
    assert "09:00" in text and "13:00" in text


def test_the_day_view_shows_only_that_day(world) -> None:  # type: ignore[no-untyped-def]
    one, two = _booked_week(world)
    url = reverse("treatment:calendar") + f"?date={one.target}&view=day&by=chair"
    text = signed_in(world.nurse).get(url).content.decode()
    assert text.count('class="booking') == 1
    assert "09:00" in text and "13:00" not in text


def test_the_view_by_staff_puts_unassigned_visits_aside(world) -> None:  # type: ignore[no-untyped-def]
    _booked_week(world)
    url = reverse("treatment:calendar") + f"?date={START}&view=week&by=staff"
    text = signed_in(world.nurse).get(url).content.decode()
    assert world.nurse.display_name in text
    assert "Not assigned to a staff" in text
    assert text.count('class="booking') == 1


def test_the_view_by_room_groups_chairs_of_a_room(world) -> None:  # type: ignore[no-untyped-def]
    _booked_week(world)
    Chair.objects.create(clinic=world.clinic_a, name="Chair 2", room="East")
    url = reverse("treatment:calendar") + f"?date={START}&view=week&by=room"
    text = signed_in(world.nurse).get(url).content.decode()
    assert text.count('<th scope="row">East</th>') == 1
    assert text.count('class="booking') == 2


def test_the_calendar_never_shows_another_clinics_bookings(world) -> None:  # type: ignore[no-untyped-def]
    _booked_week(world)
    url = reverse("treatment:calendar") + f"?date={START}&view=week&by=chair"
    text = signed_in(world.admin_b).get(url).content.decode()
    assert 'class="booking' not in text
    assert "Chair 1" not in text


def _bulk_bookings(world, count: int) -> None:  # type: ignore[no-untyped-def]
    """`count` booked visits in the week of START, spread over chairs and staff (rows made
    directly: the query budget is about reading them, not about how they were booked)."""
    course = _course(world, f"Bulk{count}")
    chairs = [
        Chair.objects.get_or_create(clinic=world.clinic_a, name=f"Chair {n}", room=f"Room {n % 3}")[
            0
        ]
        for n in range(8)
    ]
    staff = [world.nurse, world.prescriber]
    Appointment.objects.bulk_create(
        Appointment(
            clinic=world.clinic_a,
            course=course,
            patient=course.patient,
            number=100 + n,
            phase="maintenance",
            earliest=START,
            target=START,
            latest=START,
            starts_at=helpers.at(world.clinic_a, START + timedelta(days=n % 7), 8 + n % 10),
            chair=chairs[n % len(chairs)],
            staff=staff[n % 2],
            status="booked",
        )
        for n in range(count)
    )


def test_the_calendar_issues_as_many_queries_for_5_as_for_200_bookings(world) -> None:  # type: ignore[no-untyped-def]
    user = world.staff_a["front_desk"]
    base = reverse("treatment:calendar")
    urls = [
        f"{base}?date={START}&view={view}&by={by}"
        for view in ("week", "day")
        for by in ("chair", "room", "staff")
    ]
    _bulk_bookings(world, 5)
    small = {url: queries(user, "get", url) for url in urls}
    _bulk_bookings(world, 195)
    assert Appointment.objects.filter(starts_at__isnull=False).count() == 200
    for url in urls:
        large = queries(user, "get", url)
        assert_same_count(small[url], large)
    page = signed_in(user).get(urls[0])
    assert page.content.decode().count('class="booking') == 200


def test_the_course_page_issues_as_many_queries_for_12_as_for_52_sessions(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    desk = Actor.system(world.clinic_a, user=world.staff_a["front_desk"], label="test")
    chair = helpers.chair(world.clinic_a)
    for n in (1, 2):
        a = course.appointments.get(number=n)
        services.book(desk, a, starts_at=helpers.at(world.clinic_a, a.target), chair=chair)
    url = reverse("treatment:course", kwargs={"course_id": course.pk})
    small = queries(world.prescriber, "get", url)
    rx = Actor.system(world.clinic_a, user=world.prescriber, label="test")
    services.decide_after_induction(rx, course, decision="maintenance", maintenance_sessions=40)
    for n in (3, 4, 5, 6):
        a = course.appointments.get(number=n)
        services.book(desk, a, starts_at=helpers.at(world.clinic_a, a.target), chair=chair)
    assert course.appointments.count() == 52
    large = queries(world.prescriber, "get", url)
    assert_same_count(small, large)

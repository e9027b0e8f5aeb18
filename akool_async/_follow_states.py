"""The follow machine's vocabulary of states and triggers (see ``_follow_table``)."""

from __future__ import annotations

import enum


class TreeState(enum.Enum):
    FOLLOWING = "following"
    STOPPING = "stopping"  # cancelled: answers to what was sent are still taken in
    SETTLED = "settled"


class CreateState(enum.Enum):
    PLANNED = "planned"
    SENDING = "sending"  # intent recorded (or about to be), request on its way
    CREATED = "created"
    REFUSED = "refused"  # provably not created: nothing spent
    UNCERTAIN = "uncertain"  # may have been created: never sent again
    NOT_SENT = "not_sent"  # stopped before it was sent


class JobState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    AWAITING_PARTS = "awaiting_parts"  # a grid at status 3 whose four images lag
    LOOKING_UP = "looking_up"  # completed; its buttons are being fetched (callbacks have none)
    PRESSING = "pressing"  # completed; its follow-ups are being pressed
    COMPLETED = "completed"
    FAILED = "failed"
    LEFT_RUNNING = "left_running"  # timed out or stopped: it goes on on the server


class PressState(enum.Enum):
    WANTED = "wanted"  # waiting for the parent to finish
    INTENDED = "intended"  # resumed: its intent was recorded, its answer was lost
    SENDING = "sending"
    PRESSED = "pressed"
    REFUSED = "refused"  # not offered, already used, or refused before it left: no credit
    FAILED = "failed"  # the parent's buttons could not be looked up
    UNCERTAIN = "uncertain"  # may have been pressed: never pressed again
    ABANDONED = "abandoned"  # the parent did not complete, or the driver stopped first


class ImageState(enum.Enum):
    SAVING = "saving"
    SAVED = "saved"
    FAILED = "failed"
    ABANDONED = "abandoned"  # stopped while saving (a late answer still counts)


State = TreeState | CreateState | JobState | PressState | ImageState


class On(enum.Enum):
    """Triggers: events as classified for the item they concern."""

    START = "start"
    RESUMED = "resumed"  # an earlier run created it: its jobs come from the journal
    ANSWERED = "answered"  # a create/press answered with ids
    REFUSED = "refused"  # a create/press failed before it left
    IN_DOUBT = "in_doubt"  # a create/press failed after it may have left, no ids
    STOP = "stop"
    BORN = "born"
    BORN_STOPPED = "born_stopped"  # created after the driver stopped: not followed
    RECALLED_COMPLETED = "recalled_completed"
    RECALLED_FAILED = "recalled_failed"
    SEEN_RUNNING = "seen_running"
    SEEN_PARTS_PENDING = "seen_parts_pending"
    SEEN_COMPLETED = "seen_completed"  # nothing to press
    SEEN_COMPLETED_PRESS = "seen_completed_press"  # follow-ups, buttons known (a poll)
    SEEN_COMPLETED_LOOKUP = "seen_completed_lookup"  # follow-ups, buttons unknown (a callback)
    SEEN_FAILED = "seen_failed"
    WATCH_FAILED = "watch_failed"
    TIMED_OUT = "timed_out"
    LATE = "late"  # a read's answer after the driver stopped: ignored
    LOOKED_UP = "looked_up"
    LOOKUP_FAILED = "lookup_failed"
    PRESSES_SETTLED = "presses_settled"
    OFFERED = "offered"
    USED = "used"
    NOT_OFFERED = "not_offered"
    PARENT_LOST = "parent_lost"
    SAVED = "saved"
    SAVE_FAILED = "save_failed"
    SETTLE = "settle"


class Do(enum.Enum):
    SEND_CREATE = "send_create"
    RECORD_CREATE = "record_create"
    BEAR_JOBS = "bear_jobs"  # the answer's jobs join the tree (watched unless stopping)
    EMIT_FAILURE = "emit_failure"  # an outcome without a job
    WATCH = "watch"
    RECORD_STATUS = "record_status"
    RECORD_JOB_ERROR = "record_job_error"
    DOWNLOAD = "download"
    LOOK_UP = "look_up"
    PRESS_FOLLOW_UPS = "press_follow_ups"  # classify each wanted press against the buttons
    FAIL_FOLLOW_UPS = "fail_follow_ups"
    DROP_FOLLOW_UPS = "drop_follow_ups"
    EMIT_JOB = "emit_job"
    SEND_PRESS = "send_press"
    RECORD_PRESS = "record_press"
    RECORD_IMAGE = "record_image"
    STOP_ALL = "stop_all"
    RECORD_VERDICT = "record_verdict"
    EMIT_SETTLED = "emit_settled"

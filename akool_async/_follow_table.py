"""The follow machine's states and its one transition table (see ``_follow``).

``TRANSITIONS[(state, trigger)] = (next state, steps)``: the states of all kinds of items
share the table (their enum members are distinct keys). ``steps`` name what the machine
does on the way, in order; ``_follow`` turns each into actions for the driver.
"""

from __future__ import annotations

from ._follow_states import CreateState, Do, ImageState, JobState, On, PressState, State, TreeState

Row = tuple[State, tuple[Do, ...]]
_C, _J, _P, _I, _T = CreateState, JobState, PressState, ImageState, TreeState
_FOLLOWED = (_J.RUNNING, _J.AWAITING_PARTS)

TRANSITIONS: dict[tuple[State, On], Row] = {
    # -- the root create ----------------------------------------------------------------
    (_C.PLANNED, On.START): (_C.SENDING, (Do.SEND_CREATE,)),
    (_C.PLANNED, On.RESUMED): (_C.CREATED, ()),
    (_C.PLANNED, On.STOP): (_C.NOT_SENT, ()),
    (_C.SENDING, On.ANSWERED): (_C.CREATED, (Do.RECORD_CREATE, Do.BEAR_JOBS)),
    (_C.SENDING, On.REFUSED): (_C.REFUSED, (Do.RECORD_CREATE, Do.EMIT_FAILURE)),
    (_C.SENDING, On.IN_DOUBT): (_C.UNCERTAIN, (Do.RECORD_CREATE, Do.EMIT_FAILURE)),
    (_C.SENDING, On.STOP): (_C.SENDING, ()),  # sent shielded: its answer still comes
    (_C.CREATED, On.STOP): (_C.CREATED, ()),  # refused/uncertain: the tree had settled
    # -- a job --------------------------------------------------------------------------
    (_J.NEW, On.BORN): (_J.RUNNING, (Do.WATCH,)),
    (_J.NEW, On.BORN_STOPPED): (_J.LEFT_RUNNING, ()),
    (_J.NEW, On.RECALLED_COMPLETED): (_J.COMPLETED, (Do.DOWNLOAD,)),
    (_J.NEW, On.RECALLED_FAILED): (_J.FAILED, (Do.DROP_FOLLOW_UPS,)),
    (_J.RUNNING, On.SEEN_RUNNING): (_J.RUNNING, (Do.RECORD_STATUS,)),
    **{
        (s, trigger): row
        for s in _FOLLOWED
        for trigger, row in {
            On.SEEN_PARTS_PENDING: (_J.AWAITING_PARTS, (Do.RECORD_STATUS,)),
            On.SEEN_COMPLETED: (_J.COMPLETED, (Do.RECORD_STATUS, Do.DOWNLOAD, Do.EMIT_JOB)),
            On.SEEN_COMPLETED_PRESS: (
                _J.PRESSING,
                (Do.RECORD_STATUS, Do.DOWNLOAD, Do.PRESS_FOLLOW_UPS),
            ),
            On.SEEN_COMPLETED_LOOKUP: (_J.LOOKING_UP, (Do.RECORD_STATUS, Do.DOWNLOAD, Do.LOOK_UP)),
            On.SEEN_FAILED: (_J.FAILED, (Do.RECORD_STATUS, Do.DROP_FOLLOW_UPS, Do.EMIT_JOB)),
            On.WATCH_FAILED: (_J.FAILED, (Do.RECORD_JOB_ERROR, Do.DROP_FOLLOW_UPS, Do.EMIT_JOB)),
            On.TIMED_OUT: (_J.LEFT_RUNNING, (Do.RECORD_JOB_ERROR, Do.DROP_FOLLOW_UPS, Do.EMIT_JOB)),
            On.STOP: (_J.LEFT_RUNNING, (Do.DROP_FOLLOW_UPS,)),
        }.items()
    },
    (_J.LOOKING_UP, On.LOOKED_UP): (_J.PRESSING, (Do.RECORD_STATUS, Do.PRESS_FOLLOW_UPS)),
    (_J.LOOKING_UP, On.LOOKUP_FAILED): (_J.PRESSING, (Do.FAIL_FOLLOW_UPS,)),
    (_J.LOOKING_UP, On.STOP): (_J.COMPLETED, (Do.DROP_FOLLOW_UPS, Do.EMIT_JOB)),
    (_J.PRESSING, On.PRESSES_SETTLED): (_J.COMPLETED, (Do.EMIT_JOB,)),
    (_J.PRESSING, On.STOP): (_J.PRESSING, ()),  # its presses in flight still answer
    **{(s, On.STOP): (s, ()) for s in (_J.COMPLETED, _J.FAILED, _J.LEFT_RUNNING)},
    **{(s, On.LATE): (s, ()) for s in (_J.COMPLETED, _J.FAILED, _J.LEFT_RUNNING)},
    # -- a follow-up press --------------------------------------------------------------
    (_P.WANTED, On.OFFERED): (_P.SENDING, (Do.SEND_PRESS,)),
    (_P.WANTED, On.USED): (_P.REFUSED, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.WANTED, On.NOT_OFFERED): (_P.REFUSED, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.WANTED, On.LOOKUP_FAILED): (_P.FAILED, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.WANTED, On.PARENT_LOST): (_P.ABANDONED, ()),
    (_P.WANTED, On.STOP): (_P.ABANDONED, ()),
    # Resumed with its answer lost: offered and unused means it provably was not pressed.
    (_P.INTENDED, On.OFFERED): (_P.SENDING, (Do.SEND_PRESS,)),
    (_P.INTENDED, On.USED): (_P.UNCERTAIN, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.INTENDED, On.NOT_OFFERED): (_P.REFUSED, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.INTENDED, On.LOOKUP_FAILED): (_P.UNCERTAIN, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.INTENDED, On.PARENT_LOST): (_P.ABANDONED, ()),
    (_P.INTENDED, On.STOP): (_P.ABANDONED, ()),
    (_P.SENDING, On.ANSWERED): (_P.PRESSED, (Do.RECORD_PRESS, Do.BEAR_JOBS)),
    (_P.SENDING, On.REFUSED): (_P.REFUSED, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.SENDING, On.IN_DOUBT): (_P.UNCERTAIN, (Do.RECORD_PRESS, Do.EMIT_FAILURE)),
    (_P.SENDING, On.STOP): (_P.SENDING, ()),
    **{
        (s, On.STOP): (s, ())
        for s in (_P.PRESSED, _P.REFUSED, _P.FAILED, _P.UNCERTAIN, _P.ABANDONED)
    },
    # -- an image to save ---------------------------------------------------------------
    (_I.SAVING, On.SAVED): (_I.SAVED, (Do.RECORD_IMAGE,)),
    (_I.SAVING, On.SAVE_FAILED): (_I.FAILED, (Do.RECORD_IMAGE,)),
    (_I.SAVING, On.STOP): (_I.ABANDONED, ()),
    (_I.ABANDONED, On.SAVED): (_I.SAVED, (Do.RECORD_IMAGE,)),
    (_I.ABANDONED, On.SAVE_FAILED): (_I.FAILED, (Do.RECORD_IMAGE,)),
    **{(s, On.STOP): (s, ()) for s in (_I.SAVED, _I.FAILED)},
    # -- the tree -----------------------------------------------------------------------
    (_T.FOLLOWING, On.STOP): (_T.STOPPING, (Do.STOP_ALL,)),
    (_T.STOPPING, On.STOP): (_T.STOPPING, ()),
    (_T.SETTLED, On.STOP): (_T.SETTLED, ()),
    (_T.FOLLOWING, On.SETTLE): (_T.SETTLED, (Do.RECORD_VERDICT, Do.EMIT_SETTLED)),
    (_T.STOPPING, On.SETTLE): (_T.SETTLED, (Do.EMIT_SETTLED,)),  # the journal keeps it to resume
}

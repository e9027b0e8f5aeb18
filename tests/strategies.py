"""Hypothesis strategies for the models, as the server could send them."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import strategies as st

from akool_async import Button, ImageJob, ImageStatus

ids = st.text("0123456789abcdef", min_size=1, max_size=24)
statuses = st.integers(min_value=0, max_value=99).map(ImageStatus)
buttons = st.one_of(
    st.sampled_from(list(Button)), st.from_regex(r"[A-Z][0-9]{1,2}", fullmatch=True).map(Button)
)
urls = st.from_regex(r"https://cdn\.test/[a-z0-9]{1,12}\.png", fullmatch=True)
small_ints = st.integers(min_value=0, max_value=2**53)
texts = st.text(max_size=30)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), texts)
extra_keys = st.text(min_size=1, max_size=12).filter(
    lambda k: (
        k
        not in {
            "_id",
            "image_status",
            "image",
            "buttons",
            "used_buttons",
            "display_buttons",
            "upscaled_urls",
            "deduction_credit",
            "create_time",
            "image_content_model_id",
            "op_button",
            "op_buttonMessageId",
            "prompt",
            "origin_prompt",
            "source_image",
            "model_name",
            "provider",
            "file_name",
            "uid",
            "team_id",
            "image_sub_status",
            "type",
            "from",
            "sub_type",
            "faceswap_quality",
            "external_img",
        }
    )
)
extras = st.dictionaries(extra_keys, json_scalars, max_size=3).map(MappingProxyType)

jobs = st.builds(
    ImageJob,
    id=ids,
    status=statuses,
    image=st.none() | urls | st.just(""),
    buttons=st.lists(buttons, max_size=8).map(tuple),
    used_buttons=st.lists(buttons, max_size=8).map(tuple),
    upscaled_urls=st.lists(urls, max_size=2).map(tuple),
    deduction_credit=st.none() | small_ints | st.floats(0.5, 100, allow_nan=False),
    create_time=st.none() | small_ints,
    parent_id=st.none() | ids,
    op_button=st.none() | buttons,
    op_button_message_id=st.none() | texts,
    prompt=st.none() | texts,
    uid=st.none() | small_ints,
    type=st.none() | small_ints,
    from_=st.none() | small_ints,
    extra=extras,
    external_img=st.none() | urls,
)

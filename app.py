"""The tladvisor dashboard: routes to the pages and draws the shared sidebar (who am I).

Start it with ``make run`` (or ``tladvisor serve``); every teammate opens the same address. The
pages only draw and call ``tladvisor``; the store and the job queue live in ``tladvisor.ui_state``.
With access control configured (``tladvisor.auth``, docs/deploy.md) nothing below the gate runs
until the session has signed in, and the signed-in identity replaces the who-am-I picker.
"""

from __future__ import annotations

import streamlit as st

from tladvisor import auth, ui_state

st.set_page_config(page_title="tladvisor", page_icon=":material/school:", layout="wide")
ui_state.init_state()
PAGES = [
    st.Page(
        "views/upload.py", title="Upload & profile", icon=":material/upload_file:", default=True
    ),
    st.Page("views/advise.py", title="Advise", icon=":material/lightbulb:"),
    st.Page("views/models.py", title="Choose a model", icon=":material/model_training:"),
    st.Page("views/run.py", title="Run", icon=":material/play_circle:"),
    st.Page("views/compare.py", title="Compare", icon=":material/monitoring:"),
    st.Page("views/detail.py", title="Run detail", icon=":material/receipt_long:"),
]
# None: no access control; else stops here until signed in. The page addresses let a deep link
# (/detail?run=...) show the sign-in form, then that page.
identity = auth.require_access(url_paths=[page.url_path for page in PAGES])
ui_state.require_store()  # a database file that cannot be used: its problem and fix, then stop


def _forget_user() -> None:
    ui_state.set_user(None)


def _use_typed_name() -> None:
    try:
        ui_state.set_user(ui_state.clean_user_name(st.session_state.who_new))
        st.session_state.who_error = None
    except ValueError as exc:
        st.session_state.who_error = str(exc)


def _use_picked_name() -> None:
    if st.session_state.who_pick:
        ui_state.set_user(st.session_state.who_pick)


def who_am_i() -> None:
    """Pick an existing teammate or type a name once; kept in session state and in the URL."""
    if st.session_state.user is None and st.query_params.get("user"):
        try:
            st.session_state.user = ui_state.clean_user_name(st.query_params["user"])
        except ValueError as exc:
            st.sidebar.warning(f"Ignored the name in the link: {ui_state.plain(exc)}")
    user = st.session_state.user
    if user:
        # Moving between pages drops the query string: put the name back so links carry it.
        if st.query_params.get("user") != user:
            st.query_params["user"] = user
        st.sidebar.markdown(f"Working as **{ui_state.plain(user)}**")
        st.sidebar.button("Switch person", key="who_switch", on_click=_forget_user)
        return
    st.sidebar.markdown("**Who are you?** Your name goes on every run you start.")
    known = ui_state.users(ui_state.db_path())
    if known:
        st.sidebar.selectbox(
            "Pick your name", known, index=None, placeholder="a teammate who has run before",
            key="who_pick", on_change=_use_picked_name,
        )  # fmt: skip
    st.sidebar.text_input(
        "New here? Type your name", key="who_new", on_change=_use_typed_name, max_chars=40,
        placeholder="e.g. Ada",
    )  # fmt: skip
    if st.session_state.get("who_error"):
        st.sidebar.error(ui_state.plain(st.session_state.who_error))


page = st.navigation(PAGES)
with st.sidebar:
    if identity is None:
        who_am_i()
    else:
        auth.draw_signed_in(identity)
    dataset = st.session_state.dataset
    if dataset is not None:
        st.caption(
            f"Data set: **{ui_state.plain(dataset.name)}** ({dataset.modality}, {len(dataset):,} examples)"
        )
    st.caption(f"Runs database: `{ui_state.db_path()}`")
page.run()

"""The account e-mails, bilingual (Chinese first, then English), plain text.

Recipients may not have chosen a language yet, so each message carries both.
"""

from __future__ import annotations

from econtract.notifications.email import EmailMessage


def welcome(*, email: str, name: str, org_name: str, login_url: str) -> EmailMessage:
    """Sent when someone is added to an organisation (no password inside: the admin tells it)."""
    text = (
        f"{name}，您好：\n\n"
        f"您已被加入 econtract 电子合同平台上的组织「{org_name}」，登录账号为 {email}。\n"
        f"请在此登录：{login_url}\n"
        "初始密码由管理员另行告知；首次登录后请及时修改。\n\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"You have been added to the organisation \"{org_name}\" on econtract, with the login "
        f"{email}.\nSign in here: {login_url}\n"
        "Your administrator will tell you the initial password; please change it after your "
        "first sign-in.\n")
    return EmailMessage(to=(email,), subject=f"欢迎使用 econtract / Welcome to econtract — "
                                             f"{org_name}", text=text)


def account_locked(*, email: str, failures: int, minutes: int, login_url: str) -> EmailMessage:
    """A security alert to the account's owner after repeated failed sign-ins."""
    text = (
        f"您的账号 {email} 连续 {failures} 次登录失败，已被临时锁定 {minutes} 分钟。\n"
        "如果不是您本人操作，说明有人正在尝试猜测您的密码；请在锁定结束后登录并修改密码，"
        "并告知您的管理员。\n"
        f"登录地址：{login_url}\n\n"
        "----\n\n"
        f"After {failures} failed sign-in attempts in a row, your account {email} is locked "
        f"for {minutes} minutes.\nIf this was not you, someone is trying to guess your "
        "password: sign in when the lock ends, change your password and tell your "
        f"administrator.\nSign in: {login_url}\n")
    return EmailMessage(to=(email,), subject="econtract 安全提醒 / Security alert: account "
                                             "temporarily locked", text=text)

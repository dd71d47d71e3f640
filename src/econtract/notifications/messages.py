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


def _one_line(text: str) -> str:
    # Titles and names are user input; a line break in a subject would be refused at queue time.
    return " ".join(text.split())


def signing_invitation(*, email: str, name: str, title: str, org_name: str, sender_name: str,
                       link: str, deadline: str | None) -> EmailMessage:
    """The invitation to sign, with the signer's personal link (never forward it)."""
    title = _one_line(title)
    zh_deadline = f"签署截止时间：{deadline}\n" if deadline else ""
    en_deadline = f"Please sign before {deadline}.\n" if deadline else ""
    text = (
        f"{name}，您好：\n\n"
        f"「{org_name}」的 {sender_name} 邀请您签署合同《{title}》。\n"
        f"请打开以下链接查看并签署：\n{link}\n\n{zh_deadline}"
        "签署前需通过邮件验证码验证您的身份。此链接仅供您本人使用，请勿转发。\n\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"{sender_name} of \"{org_name}\" invites you to sign the contract \"{title}\".\n"
        f"Open this link to read and sign it:\n{link}\n\n{en_deadline}"
        "You will confirm your identity with a code sent by e-mail before signing. The link is "
        "personal: please do not forward it.\n")
    return EmailMessage(to=(email,), subject=f"请签署 / Please sign: {title}", text=text)


def signing_code(*, email: str, code: str, minutes: int, title: str) -> EmailMessage:
    """The one-time code that proves the signer reads this mailbox (身份验证)."""
    title = _one_line(title)
    text = (
        f"您正在签署合同《{title}》。您的验证码是：{code}\n"
        f"验证码 {minutes} 分钟内有效，只能使用一次。如果不是您本人操作，请忽略本邮件。\n\n"
        "----\n\n"
        f"You are signing the contract \"{title}\". Your verification code is: {code}\n"
        f"It is valid for {minutes} minutes and works once. If this was not you, ignore this "
        "e-mail.\n")
    return EmailMessage(to=(email,), subject="econtract 验证码 / Verification code", text=text)


def contract_declined(*, email: str, title: str, signer_name: str, signer_email: str,
                      reason: str, contract_url: str) -> EmailMessage:
    """Tells the contract's owner that a signer declined, with the reason given."""
    title = _one_line(title)
    text = (
        f"签署人 {signer_name}（{signer_email}）拒绝签署合同《{title}》。\n"
        f"拒签原因：{reason}\n合同已终止签署。查看合同：{contract_url}\n\n"
        "----\n\n"
        f"{signer_name} ({signer_email}) declined to sign the contract \"{title}\".\n"
        f"Reason: {reason}\nSigning has ended. View the contract: {contract_url}\n")
    return EmailMessage(to=(email,), subject=f"合同被拒签 / Contract declined: {title}",
                        text=text)

"""The account e-mails, bilingual (Chinese first, then English), plain text.

Recipients may not have chosen a language yet, so each message carries both.
"""

from __future__ import annotations

from econtract.notifications.email import EmailMessage, StoredAttachment


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


def signing_code_sms(*, code: str, minutes: int) -> str:
    """The one-time code by SMS: short (two segments at most), bilingual, no contract title (a
    text message is read on a lock screen)."""
    return (f"【econtract】您的签署验证码是 {code}，{minutes} 分钟内有效，请勿告诉他人。"
            f"Your econtract signing code is {code}, valid for {minutes} minutes.")


def signing_reminder(*, email: str, name: str, title: str, org_name: str, sender_name: str,
                     link: str, deadline: str | None) -> EmailMessage:
    """A reminder to a signer who has not signed yet, with a fresh personal link (the earlier
    links are stored only hashed, so they cannot be sent again)."""
    title = _one_line(title)
    zh_deadline = f"签署截止时间：{deadline}，逾期合同将失效。\n" if deadline else ""
    en_deadline = (f"Please sign before {deadline}; after that the contract expires.\n"
                   if deadline else "")
    text = (
        f"{name}，您好：\n\n"
        f"「{org_name}」的 {sender_name} 邀请您签署的合同《{title}》仍在等待您的签署。\n"
        f"请打开以下链接查看并签署：\n{link}\n\n{zh_deadline}"
        "此链接仅供您本人使用，请勿转发。如您不同意合同内容，可在签署页面拒签并说明原因。\n\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"The contract \"{title}\" that {sender_name} of \"{org_name}\" sent you is still "
        "waiting for your signature.\n"
        f"Open this link to read and sign it:\n{link}\n\n{en_deadline}"
        "The link is personal: please do not forward it. If you do not agree, you can decline "
        "on the signing page and give a reason.\n")
    return EmailMessage(to=(email,), subject=f"签署提醒 / Reminder, please sign: {title}",
                        text=text)


def contract_voided(*, email: str, title: str, org_name: str, reason: str,
                    contract_url: str | None = None) -> EmailMessage:
    """Tells a signer (or the owner, with a link to the contract) that a contract was voided:
    signing has ended and any signature already given no longer makes it a contract."""
    title = _one_line(title)
    zh_view = f"查看合同：{contract_url}\n" if contract_url else \
        "您无需再进行任何操作，之前收到的签署链接均已失效。\n"
    en_view = f"View the contract: {contract_url}\n" if contract_url else \
        "You need not do anything; the signing links you received no longer work.\n"
    text = (
        f"「{org_name}」已作废合同《{title}》，签署已终止。\n作废原因：{reason}\n{zh_view}\n"
        "----\n\n"
        f"\"{org_name}\" has voided the contract \"{title}\"; signing has ended.\n"
        f"Reason: {reason}\n{en_view}")
    return EmailMessage(to=(email,), subject=f"合同已作废 / Contract voided: {title}", text=text)


def contract_expired(*, email: str, title: str, org_name: str, deadline: str,
                     contract_url: str | None = None) -> EmailMessage:
    """Tells the owner (with a link) and the signers involved that the signing deadline passed
    before everyone had signed: the contract has expired unsigned."""
    title = _one_line(title)
    zh_view = f"查看合同：{contract_url}\n" if contract_url else \
        "您无需再进行任何操作，签署链接均已失效。如仍需签署，请联系发起方重新发送。\n"
    en_view = f"View the contract: {contract_url}\n" if contract_url else \
        ("You need not do anything; the signing links no longer work. If the contract is still "
         "wanted, ask the sender to send it again.\n")
    text = (
        f"合同《{title}》（「{org_name}」）在签署截止时间 {deadline} 前未由全部签署人签署，"
        f"现已过期，签署已终止。\n{zh_view}\n"
        "----\n\n"
        f"The contract \"{title}\" (\"{org_name}\") was not signed by everyone before its "
        f"deadline, {deadline}. It has expired and signing has ended.\n{en_view}")
    return EmailMessage(to=(email,), subject=f"合同已过期 / Contract expired: {title}", text=text)


def contract_declined_to_signer(*, email: str, name: str, title: str, org_name: str,
                                decliner_name: str) -> EmailMessage:
    """Tells the other signers already involved that someone declined, so signing has ended
    (the reason goes to the sender only)."""
    title = _one_line(title)
    text = (
        f"{name}，您好：\n\n"
        f"合同《{title}》（「{org_name}」）已被签署人 {decliner_name} 拒签，签署已终止。\n"
        "您无需再进行任何操作，签署链接均已失效；如有疑问，请联系发起方。\n\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"{decliner_name} declined to sign the contract \"{title}\" (\"{org_name}\"), so "
        "signing has ended.\nYou need not do anything; the signing links no longer work. Ask "
        "the sender if you have questions.\n")
    return EmailMessage(to=(email,), subject=f"合同被拒签 / Contract declined: {title}",
                        text=text)


def contract_completed(*, email: str, name: str, title: str, org_name: str,
                       document_sha256: str, certificate_sha256: str, verify_url: str,
                       attachments: tuple[StoredAttachment, ...],
                       contract_url: str | None = None) -> EmailMessage:
    """To every party and the owner once everyone has signed: the final (sealed) PDF and the
    certificate of completion attached, with their SHA-256 so the files can be checked."""
    title = _one_line(title)
    zh_view = f"查看合同：{contract_url}\n" if contract_url else ""
    en_view = f"View the contract: {contract_url}\n" if contract_url else ""
    text = (
        f"{name}，您好：\n\n"
        f"合同《{title}》（「{org_name}」）已由全部签署方签署，平台已封存（PAdES B-LTA）"
        "并签发完成证书。附件为最终签署版 PDF 和完成证书 PDF，请妥善保存。\n"
        f"最终文件 SHA-256：{document_sha256}\n完成证书 SHA-256：{certificate_sha256}\n"
        f"任何人都可以在 {verify_url} 验证这两个文件。\n{zh_view}\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"Everyone has signed the contract \"{title}\" (\"{org_name}\"). The platform has sealed "
        "it (PAdES B-LTA) and issued a certificate of completion. The final signed PDF and the "
        "certificate are attached: please keep them.\n"
        f"Final document SHA-256: {document_sha256}\n"
        f"Certificate SHA-256: {certificate_sha256}\n"
        f"Anyone can verify both files at {verify_url}.\n{en_view}")
    return EmailMessage(to=(email,), subject=f"合同已完成 / Contract completed: {title}",
                        text=text, stored_attachments=attachments)


def approval_request(*, email: str, name: str, title: str, sender_name: str,
                     contract_url: str) -> EmailMessage:
    """An internal approver is asked to approve a contract before it is sent (合同审批)."""
    title = _one_line(title)
    text = (
        f"{name}，您好：\n\n{sender_name} 提交了合同《{title}》，请您审批。\n"
        f"审批通过后合同方可发出签署。查看并审批：{contract_url}\n\n"
        "----\n\n"
        f"Hello {name},\n\n{sender_name} asks you to approve the contract \"{title}\" before "
        f"it is sent for signing.\nReview and decide: {contract_url}\n")
    return EmailMessage(to=(email,), subject=f"待审批 / Approval requested: {title}", text=text)


def approval_outcome(*, email: str, title: str, approved: bool, approver_name: str,
                     comment: str, contract_url: str) -> EmailMessage:
    """Tells the contract's owner the approval result (with the approver's comment)."""
    title = _one_line(title)
    zh = "已审批通过，可以发出签署" if approved else "被驳回，已退回草稿"
    en = "was approved and can now be sent" if approved else "was rejected and is a draft again"
    zh_comment = f"审批意见：{comment}\n" if comment else ""
    en_comment = f"Comment: {comment}\n" if comment else ""
    text = (
        f"合同《{title}》{zh}（审批人：{approver_name}）。\n{zh_comment}查看合同：{contract_url}\n\n"
        "----\n\n"
        f"The contract \"{title}\" {en} (by {approver_name}).\n{en_comment}"
        f"View the contract: {contract_url}\n")
    subject = (f"审批通过 / Approved: {title}" if approved
               else f"审批驳回 / Rejected: {title}")
    return EmailMessage(to=(email,), subject=subject, text=text)


def renewal_reminder(*, email: str, name: str, title: str, org_name: str, expiry_date: str,
                     days_left: int, contract_url: str) -> EmailMessage:
    """Tells the owner that a completed contract expires soon (合同到期提醒), once per contract,
    the organisation's configured number of days before its expiry date."""
    title = _one_line(title)
    zh_left = "今天到期" if days_left == 0 else f"还有 {days_left} 天到期"
    en_left = "expires today" if days_left == 0 else \
        f"expires in {days_left} day{'s' if days_left != 1 else ''}"
    text = (
        f"{name}，您好：\n\n"
        f"合同《{title}》（「{org_name}」）将于 {expiry_date} 到期，{zh_left}。\n"
        "如需续签，请及时与对方联系并发起新合同。\n"
        f"查看合同：{contract_url}\n\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"The contract \"{title}\" (\"{org_name}\") {en_left}, on {expiry_date}.\n"
        "If it is to be renewed, contact the other parties and send a new contract in time.\n"
        f"View the contract: {contract_url}\n")
    return EmailMessage(to=(email,), subject=f"合同即将到期 / Contract expires soon: {title}",
                        text=text)


def contract_lapsed(*, email: str, name: str, title: str, org_name: str, expiry_date: str,
                    contract_url: str) -> EmailMessage:
    """Tells the owner that a completed contract's expiry date has passed: it is now lapsed."""
    title = _one_line(title)
    text = (
        f"{name}，您好：\n\n"
        f"合同《{title}》（「{org_name}」）已于 {expiry_date} 到期，状态已变更为「已失效」。\n"
        f"查看合同：{contract_url}\n\n"
        "----\n\n"
        f"Hello {name},\n\n"
        f"The contract \"{title}\" (\"{org_name}\") expired on {expiry_date}; it is now marked "
        "lapsed.\n"
        f"View the contract: {contract_url}\n")
    return EmailMessage(to=(email,), subject=f"合同已到期 / Contract lapsed: {title}", text=text)

"""A real SMTP receiver for the notification tests (aiosmtpd, pinned in tests/drivers/install.sh).

Usage: smtp_sink.py PORT DIR. Listens on 127.0.0.1:PORT, prints "ready" once it accepts connections, and
writes each message it receives to DIR/N.json: envelope sender and recipients, the decoded headers and
the plain-text body. Runs until standard input closes (the test process ending closes it).
"""

import email
import email.policy
import itertools
import json
import os
import sys

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, out):
        self.out = out
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        saved = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "body": message.get_content(),
        }
        n = next(self.numbers)
        tmp = os.path.join(self.out, f".{n}.tmp")
        with open(tmp, "w") as f:
            json.dump(saved, f)
        # A test never reads a half-written message.
        os.rename(tmp, os.path.join(self.out, f"{n}.json"))
        return "250 OK"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Save(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()

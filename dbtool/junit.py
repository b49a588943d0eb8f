"""JUnit XML, as validate, lint and the fleet report write it: suites of test cases, counts taken from the cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET

OUTCOMES = (("failure", "failures"), ("error", "errors"), ("skipped", "skipped"))


class Suites:
    """<testsuites> whose <testsuite>s are made on first use, in that order."""

    def __init__(self, name: str) -> None:
        self.root = ET.Element("testsuites", name=name)
        self._suites: dict[str, ET.Element] = {}

    def suite(self, name: str) -> ET.Element:
        if name not in self._suites:
            self._suites[name] = ET.SubElement(self.root, "testsuite", name=name)
        return self._suites[name]

    def case(self, suite: str, classname: str, name: str) -> ET.Element:
        return ET.SubElement(self.suite(suite), "testcase", classname=classname, name=name)

    def xml(self) -> str:
        """The document, with tests/failures/errors/skipped counted per suite and in all."""
        totals = dict.fromkeys(["tests", *(key for _, key in OUTCOMES)], 0)
        for suite in self.root.iter("testsuite"):
            cases = suite.findall("testcase")
            counts = {"tests": len(cases)} | {key: sum(c.find(tag) is not None for c in cases) for tag, key in OUTCOMES}
            for key, value in counts.items():
                suite.set(key, str(value))
                totals[key] += value
        for key, value in totals.items():
            self.root.set(key, str(value))
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(self.root, encoding="unicode") + "\n"

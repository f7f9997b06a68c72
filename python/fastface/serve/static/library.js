// The Face Library page of `fastface serve`: plain JavaScript, no build step.
// The API key is kept by the server in an HttpOnly cookie (POST /v1/login), so
// every request here, images and the live view included, carries it.
"use strict";

const $ = (id) => document.getElementById(id);
let selected = null; // the subject whose faces are shown
let shownGroups = ""; // the unknown groups on the page, as JSON

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) throw new Unauthorized("log in");
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message;
    } catch (_) { /* not the service's JSON error */ }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function showLogin(message = "") {
  $("library").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

async function start() {
  try {
    const people = await api("/v1/library/people");
    $("login").hidden = true;
    $("library").hidden = false;
    $("logout").hidden = false;
    showPeople(people);
    showCameras(people.cameras);
    await refresh();
  } catch (error) {
    if (error instanceof Unauthorized) showLogin();
    else throw error;
  }
}

async function refresh() {
  try {
    const [people, recent, unknown] = await Promise.all([
      api("/v1/library/people"),
      api("/v1/events?limit=20"),
      api("/v1/library/unknown"),
    ]);
    showPeople(people);
    showRecent(recent.events);
    showUnknown(unknown.groups);
  } catch (error) {
    if (error instanceof Unauthorized) showLogin();
  }
}

function faceImage(face) {
  return face && face.thumbnail
    ? element("img", { src: `/v1/faces/${face.face_id}/thumbnail`, alt: "" })
    : element("div", { class: "blank" });
}

function showPeople(data) {
  const cards = data.people.map((person) => {
    const shown = person.faces.find((f) => f.thumbnail) || person.faces[0];
    const count = person.faces.length;
    const card = element(
      "div",
      { class: "person", "data-subject": person.subject, tabindex: "0" },
      faceImage(shown),
      element("div", { class: "name", text: person.subject }),
      element("div", { class: "count", text: `${count} face${count === 1 ? "" : "s"}` }),
    );
    if (person.subject === selected) card.classList.add("selected");
    card.addEventListener("click", () => { selected = person.subject; showPeople(data); });
    return card;
  });
  $("people").replaceChildren(...cards);
  const person = data.people.find((p) => p.subject === selected);
  $("person").hidden = !person;
  if (!person) return;
  $("person-name").textContent = `${person.subject}: faces`;
  $("person-faces").replaceChildren(...person.faces.map((face) => {
    const remove = element("button", { class: "remove", type: "button", text: "Not this person" });
    remove.addEventListener("click", async () => {
      await api(`/v1/faces/${face.face_id}`, { method: "DELETE" });
      await refresh();
    });
    return element("div", { class: "face", "data-face": face.face_id }, faceImage(face), remove);
  }));
}

function showCameras(names) {
  $("cameras").replaceChildren(...names.map((name) => element(
    "div",
    { class: "camera" },
    element("div", { class: "name", text: name }),
    element("img", { src: `/v1/live.mjpg?camera=${encodeURIComponent(name)}`, alt: `${name} live` }),
  )));
  if (!names.length) $("cameras").textContent = "No cameras (start the service with --camera).";
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

function showRecent(events) {
  $("recent").replaceChildren(...events.map((event) => element(
    "li",
    { class: event.label ? "named" : "unknown", "data-label": event.label || "unknown" },
    element("img", { src: event.crop, alt: "" }),
    element("div", {},
      element("div", { class: "label", text: event.label || "unknown" }),
      element("div", { class: "when", text: `${event.camera} · ${when(event.end)}` })),
  )));
}

function showUnknown(groups) {
  // Left as they are while someone types a name, or when nothing changed.
  const typing = [...document.querySelectorAll("#unknown input")].some((i) => i.value);
  const text = JSON.stringify(groups);
  if (typing || text === shownGroups) return;
  shownGroups = text;
  if (!groups.length) {
    $("unknown").replaceChildren(element("p", { class: "hint", text: "No unknown faces." }));
    return;
  }
  $("unknown").replaceChildren(...groups.map((group, number) => {
    const name = element("input", { placeholder: "name", required: "", maxlength: "200",
                                    "aria-label": `name of group ${number + 1}` });
    const form = element("form", {}, name, element("button", { type: "submit", text: "Name" }));
    const message = element("p", { class: "error", role: "alert" });
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      try {
        await api("/v1/library/unknown/name", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ subject: name.value.trim(), events: group.events }),
        });
        name.value = "";
        shownGroups = "";
        await refresh();
      } catch (error) {
        message.textContent = error.message;
      }
    });
    const crops = group.events.slice(0, 12).map(
      (id) => element("img", { src: `/v1/events/${id}/crop`, alt: "" }));
    return element("div", { class: "group", "data-size": String(group.events.length) },
      element("div", { class: "crops" }, ...crops),
      element("div", { class: "when", text: group.events.length === 1 ? "seen once" : `seen ${group.events.length} times` }),
      form, message);
  }));
}

async function addPhotos(submitted) {
  submitted.preventDefault();
  const subject = $("add-name").value.trim();
  const results = $("add-results");
  results.replaceChildren();
  for (const file of $("add-files").files) {
    const line = element("li", { text: `${file.name}: adding…` });
    results.append(line);
    try {
      const added = await api(`/v1/library/people/${encodeURIComponent(subject)}/photos`, {
        method: "POST",
        headers: { "Content-Type": file.type || "application/octet-stream" },
        body: file,
      });
      line.className = "ok";
      line.textContent = `${file.name}: added to ${added.subject}`;
    } catch (error) {
      line.className = "refused";
      line.textContent = `${file.name}: ${error.message}`;
    }
  }
  selected = subject;
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    try {
      await api("/v1/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ key: $("login-key").value }),
      });
      $("login-key").value = "";
      await start();
    } catch (error) {
      showLogin(error instanceof Unauthorized ? "That key is not one of the service's." : error.message);
    }
  });
  $("logout").addEventListener("click", async () => {
    await api("/v1/logout", { method: "POST" });
    showLogin();
  });
  $("add-form").addEventListener("submit", addPhotos);
  start();
  setInterval(() => { if (!$("library").hidden) refresh(); }, 2000);
});

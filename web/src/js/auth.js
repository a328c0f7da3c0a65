// Sign in and sign up (PocketBase's users collection; sign-up is open in a
// fresh app). Calls onDone once the auth store holds a user.
import { pb, errorText } from "./pb.js";
import { h, icon } from "./dom.js";

export function renderAuth(root, onDone) {
    let mode = "signin";
    const card = h("div.auth-card");
    root.replaceChildren(h("div.auth", card));

    const draw = () => {
        const signUp = mode === "signup";
        const error = h("p.error-text", { role: "alert" });
        const name = h("input", { type: "text", name: "name", autocomplete: "name", required: true, placeholder: "Your name" });
        const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true, placeholder: "you@example.com" });
        const password = h("input", { type: "password", name: "password", autocomplete: signUp ? "new-password" : "current-password", required: true, minlength: signUp ? "8" : null, placeholder: signUp ? "At least 8 characters" : "" });
        const submit = h("button.primary.wide", { type: "submit" }, signUp ? "Create account" : "Sign in");
        const form = h("form.stack",
            signUp ? h("label", h("span", "Name"), name) : null,
            h("label", h("span", "Email"), email),
            h("label", h("span", "Password"), password),
            error, submit);
        form.addEventListener("submit", async (e) => {
            e.preventDefault();
            submit.disabled = true;
            error.textContent = "";
            try {
                if (signUp) {
                    await pb.collection("users").create({
                        name: name.value.trim(), email: email.value.trim(),
                        password: password.value, passwordConfirm: password.value,
                    });
                }
                await pb.collection("users").authWithPassword(email.value.trim(), password.value);
                onDone();
            } catch (err) {
                error.textContent = errorText(err);
                submit.disabled = false;
            }
        });
        card.replaceChildren(
            h("div.brand", h("span.brand-mark", icon("chat")), h("span", "pbchat")),
            h("h1", signUp ? "Create your account" : "Welcome back"),
            h("p.muted-text", signUp ? "Chat with anyone on this server." : "Sign in to see your conversations."),
            form,
            h("p.switch", signUp ? "Already have an account? " : "New here? ",
                h("button.link", { type: "button", onclick: () => { mode = signUp ? "signin" : "signup"; draw(); } },
                    signUp ? "Sign in" : "Create an account")));
        (signUp ? name : email).focus();
    };
    draw();
}

import { expect, type Locator, type Page } from "@playwright/test";

/** Page object for /login and /signup. */
export class AuthPage {
  readonly email: Locator;
  readonly password: Locator;
  readonly submit: Locator;
  readonly formError: Locator;
  readonly emailError: Locator;
  readonly passwordError: Locator;

  constructor(readonly page: Page) {
    this.email = page.getByTestId("email-input");
    this.password = page.getByTestId("password-input");
    this.submit = page.getByTestId("auth-submit");
    this.formError = page.getByTestId("auth-error");
    this.emailError = page.getByTestId("email-error");
    this.passwordError = page.getByTestId("password-error");
  }

  async fill(email: string, password: string) {
    await this.email.fill(email);
    await this.password.fill(password);
  }

  async signup(email: string, password: string) {
    await this.page.goto("/signup");
    await this.fill(email, password);
    await this.submit.click();
    await expect(this.page.getByTestId("composer-input")).toBeVisible();
  }

  async login(email: string, password: string) {
    await expect(this.page).toHaveURL(/\/login/);
    await this.fill(email, password);
    await this.submit.click();
  }
}
